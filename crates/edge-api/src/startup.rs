//! Start-up: seed what must always exist and resolve what a crash left in flight, so that no
//! resource is ever stuck in an intermediate state (a Starting event ends Running, a Stopping
//! one Stopped, a Deleting one gone) and every Running event accepts its encoder again.

use std::collections::HashMap;

use edge_db::{OperationKind, OperationRow};
use edge_model::state::{self, LiveEventAction};
use edge_model::{
    LiveEventState, LiveOutputState, OperationStatus, ProvisioningState, StreamingEndpointState, Timestamp,
};

use crate::error::{ApiError, ApiResult};
use crate::{Shared, db, endpoints};

/// What start-up did, for the log.
#[derive(Debug, Default)]
pub struct Recovery {
    pub operations_resolved: usize,
    pub events_resolved: Vec<String>,
    pub events_running: Vec<String>,
}

pub async fn startup(st: &Shared) -> ApiResult<Recovery> {
    let mut report = Recovery::default();
    let seed = endpoints::default_row(&st.identity.location);
    db(st, move |d| d.endpoint_ensure(&seed)).await?;

    // The action each in-flight operation was performing, per live event.
    let ops: Vec<OperationRow> = db(st, |d| d.operations_in_flight()).await?;
    let mut event_actions: HashMap<String, LiveEventAction> = HashMap::new();
    for op in &ops {
        if op.kind == OperationKind::LiveEvent {
            let action = op.action.split([':', '+']).next().unwrap_or("");
            if let Some(a) = LiveEventAction::parse(action) {
                event_actions.insert(op.scope.trim_start_matches("le:").to_owned(), a);
            }
        }
    }

    let mut to_start = Vec::new();
    for ev in db(st, |d| d.live_events()).await? {
        let key = ev.name.to_ascii_lowercase();
        let action = event_actions.get(&key).copied();
        let target = state::recover(ev.state, action);
        let remove_outputs = !ops.iter().any(|o| o.scope == format!("le:{key}") && o.action.ends_with(":keepOutputs"));
        match target {
            None => {
                let k = key.clone();
                db(st, move |d| d.live_event_delete(&k)).await?;
                report.events_resolved.push(format!("{}: Deleting -> deleted", ev.name));
                continue;
            }
            Some(t) if t != ev.state || ev.provisioning != ProvisioningState::Succeeded => {
                if ev.state == LiveEventState::Stopping || action == Some(LiveEventAction::Reset) {
                    // Finish what the stop (or the stop half of a reset) was doing.
                    if remove_outputs {
                        let k = key.clone();
                        for o in db(st, move |d| d.live_outputs(&k)).await? {
                            let id = o.id.clone();
                            db(st, move |d| d.live_output_delete(&id)).await?;
                        }
                    }
                }
                let k = key.clone();
                db(st, move |d| d.live_event_set_state(&k, t, ProvisioningState::Succeeded)).await?;
                report.events_resolved.push(format!("{}: {} -> {}", ev.name, ev.state, t));
                if t == LiveEventState::Running {
                    to_start.push(ev.clone());
                }
            }
            Some(LiveEventState::Running) => to_start.push(ev.clone()),
            Some(_) => {}
        }
    }

    for out in db(st, |d| d.live_outputs_all()).await? {
        let id = out.id.clone();
        match out.state {
            LiveOutputState::Creating => {
                db(st, move |d| d.live_output_set_state(&id, LiveOutputState::Running, ProvisioningState::Succeeded))
                    .await?
            }
            LiveOutputState::Deleting => {
                db(st, move |d| d.live_output_delete(&id)).await?;
            }
            LiveOutputState::Running if out.provisioning != ProvisioningState::Succeeded => {
                db(st, move |d| d.live_output_set_state(&id, LiveOutputState::Running, ProvisioningState::Succeeded))
                    .await?
            }
            LiveOutputState::Running => {}
        }
    }

    // Running events come back after their live outputs are resolved, so that their pipelines
    // resume recording into the right assets.
    for ev in to_start {
        st.live
            .start(crate::live_events::session_of(&ev))
            .map_err(|e| ApiError::internal("resuming a live pipeline", e))?;
        // The event has been Running since it last changed state: the time limit counts from there.
        let ran = (Timestamp::now().unix_nanos() - ev.last_modified.unix_nanos()).max(0) as u64;
        let remaining = st.event_max_duration.saturating_sub(std::time::Duration::from_nanos(ran));
        if let Some(started) = st.live.started(&ev.id) {
            crate::live_events::arm_auto_stop(st, &ev, started, remaining);
        }
        report.events_running.push(ev.name.clone());
    }

    for e in db(st, |d| d.endpoints()).await? {
        let key = e.name.to_ascii_lowercase();
        let target = match e.state {
            StreamingEndpointState::Starting | StreamingEndpointState::Scaling => Some(StreamingEndpointState::Running),
            StreamingEndpointState::Stopping => Some(StreamingEndpointState::Stopped),
            StreamingEndpointState::Deleting => None,
            s => Some(s),
        };
        match target {
            None => {
                db(st, move |d| d.endpoint_delete(&key)).await?;
            }
            Some(t) if t != e.state || e.provisioning != ProvisioningState::Succeeded => {
                db(st, move |d| d.endpoint_set(&key, t, None)).await?;
            }
            Some(_) => {}
        }
    }

    for op in ops {
        let id = op.id.clone();
        db(st, move |d| d.operation_finish(&id, OperationStatus::Succeeded, None)).await?;
        report.operations_resolved += 1;
    }
    crate::assets::collect_garbage(st).await;
    // Operations are only needed while clients poll them.
    let day_ago = Timestamp(Timestamp::now().0 - time::Duration::days(1));
    db(st, move |d| d.operations_prune(day_ago)).await?;
    Ok(report)
}

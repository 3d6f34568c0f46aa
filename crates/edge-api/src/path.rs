//! ARM request paths, decoded in one place into a typed route. ARM paths are case-insensitive,
//! so every literal segment is matched ignoring case (`mediaservices` and `mediaServices`,
//! `liveEvents` and `liveevents`, `listPaths` and `LISTPATHS`).

use percent_encoding::percent_decode_str;

/// Resource collections under an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    LiveEvents,
    LiveEvent(String),
    LiveEventAction(String, String),
    LiveEventOperationLocation(String, String),
    LiveOutputs(String),
    LiveOutput(String, String),
    LiveOutputOperationLocation(String, String, String),
    LiveEventOperation(String),
    LiveOutputOperation(String),
    StreamingEndpointOperation(String),
    StreamingEndpoints,
    StreamingEndpoint(String),
    StreamingEndpointAction(String, String),
    StreamingEndpointOperationLocation(String, String),
    Assets,
    Asset(String),
    AssetAction(String, String),
    AssetFilters(String),
    AssetFilter(String, String),
    StreamingLocators,
    StreamingLocator(String),
    StreamingLocatorAction(String, String),
    StreamingPolicies,
    StreamingPolicy(String),
    AccountFilters,
    AccountFilter(String),
    ContentKeyPolicies,
    ContentKeyPolicy(String),
    ContentKeyPolicyAction(String, String),
    Account,
}

/// The account a path addresses, as the client spelled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmPath {
    pub subscription: String,
    pub resource_group: String,
    pub account: String,
    pub route: Route,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// Not an ARM Microsoft.Media path at all.
    NotArm,
    /// An ARM path to something the appliance does not have.
    Unknown(String),
}

fn lit(seg: &str, expected: &str) -> bool {
    seg.eq_ignore_ascii_case(expected)
}

pub fn parse(path: &str) -> Result<ArmPath, PathError> {
    let trimmed = path.trim_end_matches('/');
    let segs: Vec<String> =
        trimmed.split('/').skip(1).map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned()).collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    if s.len() < 8
        || !lit(s[0], "subscriptions")
        || !lit(s[2], "resourceGroups")
        || !lit(s[4], "providers")
        || !lit(s[5], "Microsoft.Media")
        || !lit(s[6], "mediaservices")
    {
        return Err(PathError::NotArm);
    }
    let unknown = || PathError::Unknown(path.to_owned());
    let o = |x: &str| x.to_owned();
    let rest = &s[8..];
    let route = match rest {
        [] => Route::Account,
        [c] if lit(c, "liveEvents") => Route::LiveEvents,
        [c, n] if lit(c, "liveEvents") => Route::LiveEvent(o(n)),
        [c, n, ol, id] if lit(c, "liveEvents") && lit(ol, "operationLocations") => {
            Route::LiveEventOperationLocation(o(n), o(id))
        }
        [c, n, lo] if lit(c, "liveEvents") && lit(lo, "liveOutputs") => Route::LiveOutputs(o(n)),
        [c, n, a] if lit(c, "liveEvents") => Route::LiveEventAction(o(n), o(a)),
        [c, n, lo, m] if lit(c, "liveEvents") && lit(lo, "liveOutputs") => Route::LiveOutput(o(n), o(m)),
        [c, n, lo, m, ol, id] if lit(c, "liveEvents") && lit(lo, "liveOutputs") && lit(ol, "operationLocations") => {
            Route::LiveOutputOperationLocation(o(n), o(m), o(id))
        }
        [c, id] if lit(c, "liveEventOperations") => Route::LiveEventOperation(o(id)),
        [c, id] if lit(c, "liveOutputOperations") => Route::LiveOutputOperation(o(id)),
        [c, id] if lit(c, "streamingEndpointOperations") => Route::StreamingEndpointOperation(o(id)),
        [c] if lit(c, "streamingEndpoints") => Route::StreamingEndpoints,
        [c, n] if lit(c, "streamingEndpoints") => Route::StreamingEndpoint(o(n)),
        [c, n, ol, id] if lit(c, "streamingEndpoints") && lit(ol, "operationLocations") => {
            Route::StreamingEndpointOperationLocation(o(n), o(id))
        }
        [c, n, a] if lit(c, "streamingEndpoints") => Route::StreamingEndpointAction(o(n), o(a)),
        [c] if lit(c, "assets") => Route::Assets,
        [c, n] if lit(c, "assets") => Route::Asset(o(n)),
        [c, n, f] if lit(c, "assets") && lit(f, "assetFilters") => Route::AssetFilters(o(n)),
        [c, n, a] if lit(c, "assets") => Route::AssetAction(o(n), o(a)),
        [c, n, f, m] if lit(c, "assets") && lit(f, "assetFilters") => Route::AssetFilter(o(n), o(m)),
        [c] if lit(c, "streamingLocators") => Route::StreamingLocators,
        [c, n] if lit(c, "streamingLocators") => Route::StreamingLocator(o(n)),
        [c, n, a] if lit(c, "streamingLocators") => Route::StreamingLocatorAction(o(n), o(a)),
        [c] if lit(c, "streamingPolicies") => Route::StreamingPolicies,
        [c, n] if lit(c, "streamingPolicies") => Route::StreamingPolicy(o(n)),
        [c] if lit(c, "accountFilters") => Route::AccountFilters,
        [c, n] if lit(c, "accountFilters") => Route::AccountFilter(o(n)),
        [c] if lit(c, "contentKeyPolicies") => Route::ContentKeyPolicies,
        [c, n] if lit(c, "contentKeyPolicies") => Route::ContentKeyPolicy(o(n)),
        [c, n, a] if lit(c, "contentKeyPolicies") => Route::ContentKeyPolicyAction(o(n), o(a)),
        _ => return Err(unknown()),
    };
    Ok(ArmPath { subscription: o(s[1]), resource_group: o(s[3]), account: o(s[7]), route })
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Media";

    #[test]
    fn both_spellings_and_any_case() {
        for seg in ["mediaservices", "mediaServices", "MEDIASERVICES"] {
            let p = parse(&format!("{P}/{seg}/acct/liveEvents/ev1")).unwrap();
            assert_eq!(p.route, Route::LiveEvent("ev1".into()));
            assert_eq!(p.account, "acct");
        }
        let p = parse(
            "/SUBSCRIPTIONS/s/resourcegroups/rg/PROVIDERS/microsoft.media/mediaservices/a/liveevents/E/LIVEOUTPUTS/o",
        )
        .unwrap();
        assert_eq!(p.route, Route::LiveOutput("E".into(), "o".into()));
    }

    #[test]
    fn actions_and_operations() {
        let base = format!("{P}/mediaservices/a");
        assert_eq!(
            parse(&format!("{base}/liveEvents/e/start")).unwrap().route,
            Route::LiveEventAction("e".into(), "start".into())
        );
        assert_eq!(
            parse(&format!("{base}/liveevents/e/operationlocations/123")).unwrap().route,
            Route::LiveEventOperationLocation("e".into(), "123".into())
        );
        assert_eq!(
            parse(&format!("{base}/liveeventoperations/1")).unwrap().route,
            Route::LiveEventOperation("1".into())
        );
        assert_eq!(
            parse(&format!("{base}/streamingLocators/l/LISTPATHS")).unwrap().route,
            Route::StreamingLocatorAction("l".into(), "LISTPATHS".into())
        );
        assert_eq!(parse(&format!("{base}/assets/a%20b")).unwrap().route, Route::Asset("a b".into()));
        assert_eq!(
            parse(&format!("{base}/assets/x/assetFilters/f")).unwrap().route,
            Route::AssetFilter("x".into(), "f".into())
        );
        assert_eq!(parse(&format!("{base}/liveEvents/")).unwrap().route, Route::LiveEvents);
    }

    #[test]
    fn refusals() {
        assert_eq!(parse("/auth/token"), Err(PathError::NotArm));
        assert_eq!(parse(&format!("{P}/other/a/liveEvents")), Err(PathError::NotArm));
        assert!(matches!(parse(&format!("{P}/mediaservices/a/transforms")), Err(PathError::Unknown(_))));
        assert!(matches!(parse(&format!("{P}/mediaservices/a/liveEvents/e/x/y/z/w")), Err(PathError::Unknown(_))));
    }
}

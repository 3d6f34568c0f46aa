//! The upload state machine of one object, sans-IO: from what the outbox row says has been
//! committed, the next request to make. A restart reads the row and continues here, so a
//! large file resumes from its last committed part instead of starting over.

/// What the outbox knows of an object's upload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Progress {
    pub done: bool,
    /// The block / multipart upload in progress.
    pub upload_id: Option<String>,
    /// Ids of the committed parts, in order (part i covers bytes `i*part_size ..`).
    pub parts: Vec<String>,
    /// Bytes the committed parts cover, as recorded with them.
    pub bytes_done: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A small object, or a target without multipart: one request with the whole content.
    PutWhole,
    /// Start a block / multipart upload; its id is stored before any part is sent.
    Create,
    /// Send part `idx`: bytes `offset .. offset + len` of the file.
    Part {
        idx: usize,
        offset: u64,
        len: u64,
    },
    /// Every part is committed: commit the list.
    Complete,
    /// Stored parts do not match this file and part size (the part size was changed between
    /// runs): abandon the upload and start again.
    Restart,
    Done,
}

/// The next step for an object of `size` bytes with parts of `part_size`.
pub fn next_step(p: &Progress, size: u64, part_size: u64, multipart: bool) -> Step {
    if p.done {
        return Step::Done;
    }
    if !multipart || size <= part_size {
        return Step::PutWhole;
    }
    let Some(_) = &p.upload_id else { return Step::Create };
    let n_parts = size.div_ceil(part_size) as usize;
    let covered = (p.parts.len() as u64 * part_size).min(size);
    if p.parts.len() > n_parts || covered != p.bytes_done {
        return Step::Restart;
    }
    if p.parts.len() < n_parts {
        let idx = p.parts.len();
        let offset = idx as u64 * part_size;
        return Step::Part { idx, offset, len: part_size.min(size - offset) };
    }
    Step::Complete
}

/// What a step's request returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Put,
    Created(String),
    PartCommitted {
        idx: usize,
        id: String,
        len: u64,
    },
    Completed,
    /// The service no longer knows the upload (expired, aborted, or the target was reset):
    /// start again from the first part.
    UploadLost,
    Restarted,
}

/// Applies an outcome: the new progress to store (before the next step is taken).
pub fn apply(mut p: Progress, o: Outcome, size: u64) -> Progress {
    match o {
        Outcome::Put | Outcome::Completed => {
            p.done = true;
            p.bytes_done = size;
        }
        Outcome::Created(id) => {
            p.upload_id = Some(id);
            p.parts.clear();
            p.bytes_done = 0;
        }
        Outcome::PartCommitted { idx, id, len } => {
            // A part is only ever the next one; anything else is a bug upstream.
            assert_eq!(idx, p.parts.len(), "parts are committed in order");
            p.parts.push(id);
            p.bytes_done += len;
        }
        Outcome::UploadLost | Outcome::Restarted => {
            p.upload_id = None;
            p.parts.clear();
            p.bytes_done = 0;
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the machine to completion, "crashing" (dropping everything but the stored
    /// progress) after `crash_after` requests; returns the bytes sent in parts/puts.
    fn run(size: u64, part: u64, start: Progress, crash_after: Option<usize>) -> (Progress, u64, usize) {
        let mut p = start;
        let (mut sent, mut requests) = (0u64, 0usize);
        let mut next_id = 0;
        loop {
            if crash_after == Some(requests) {
                return (p, sent, requests);
            }
            let step = next_step(&p, size, part, true);
            let outcome = match step {
                Step::Done => return (p, sent, requests),
                Step::PutWhole => {
                    sent += size;
                    Outcome::Put
                }
                Step::Create => {
                    next_id += 1;
                    Outcome::Created(format!("u{next_id}"))
                }
                Step::Part { idx, len, offset } => {
                    assert_eq!(offset, idx as u64 * part);
                    sent += len;
                    Outcome::PartCommitted { idx, id: format!("b{idx}"), len }
                }
                Step::Complete => Outcome::Completed,
                Step::Restart => Outcome::Restarted,
            };
            requests += 1;
            p = apply(p, outcome, size);
        }
    }

    #[test]
    fn small_files_are_one_put_large_ones_parts() {
        let (p, sent, n) = run(100, 1000, Progress::default(), None);
        assert!(p.done);
        assert_eq!((sent, n), (100, 1));
        let (p, sent, n) = run(2500, 1000, Progress::default(), None);
        assert_eq!((sent, n), (2500, 5), "create + 3 parts + complete");
        assert_eq!(p.parts, vec!["b0", "b1", "b2"]);
        assert_eq!(next_step(&p, 2500, 1000, true), Step::Done);
        assert_eq!(next_step(&Progress::default(), 2500, 1000, false), Step::PutWhole);
    }

    #[test]
    fn a_crash_resumes_after_the_last_committed_part() {
        for crash in 1..5 {
            let (stored, sent1, _) = run(2500, 1000, Progress::default(), Some(crash));
            let (done, sent2, _) = run(2500, 1000, stored, None);
            assert!(done.done);
            assert_eq!(sent1 + sent2, 2500, "crash after {crash} requests: nothing sent twice");
            assert_eq!(done.parts.len(), 3);
        }
    }

    #[test]
    fn a_lost_upload_or_changed_part_size_starts_over() {
        let (stored, _, _) = run(2500, 1000, Progress::default(), Some(3));
        assert_eq!(stored.parts.len(), 2);
        // The part size changed between runs: the stored parts no longer line up.
        assert_eq!(next_step(&stored, 2500, 600, true), Step::Restart);
        let (done, sent, _) = run(2500, 600, stored.clone(), None);
        assert!(done.done);
        assert_eq!(sent, 2500);
        // The service lost the upload: start again from part 0 under a new id.
        let lost = apply(stored, Outcome::UploadLost, 2500);
        assert_eq!(next_step(&lost, 2500, 1000, true), Step::Create);
    }
}

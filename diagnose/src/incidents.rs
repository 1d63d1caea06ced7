//! Incidents: what the continuous diagnosis saw over time. An incident
//! opens with the first diagnosis that finds one, follows the diagnoses
//! while they do (its top cause may change), and resolves after
//! [`QUIET_TO_RESOLVE`] diagnoses in a row find none. The list is kept in
//! one file in the data directory (`incidents`, format in
//! `docs/format.md`), replaced whole and durably after every change, so
//! incidents survive a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sextant_wal::{Vfs, replace_file_durable};

use crate::error::{Error, Result};
use crate::report::Diagnosis;

/// Diagnoses in a row without an incident that resolve an open one.
pub const QUIET_TO_RESOLVE: u32 = 3;
/// Incidents kept; the oldest resolved ones go first.
pub const MAX_KEPT: usize = 500;

const MAGIC: &[u8; 4] = b"SXIN";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 16;

/// The top cause of an incident, as its notification shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CauseSummary {
    /// Name (service, instance, peer, `caller->callee`).
    pub name: String,
    /// Kind (`service`, `instance`, `database`, `external`, `link`).
    pub kind: String,
    /// Owning or calling service.
    pub service: String,
    /// Score, 0–1.
    pub score: f64,
    /// The explanation paragraph.
    pub explanation: String,
}

/// One incident.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Incident {
    /// Increasing id.
    pub id: u64,
    /// `open` or `resolved`.
    pub status: String,
    /// When the first diagnosis found it (its window's end), ms.
    pub opened: i64,
    /// When a diagnosis last found it, ms.
    pub updated: i64,
    /// When it resolved, ms.
    pub resolved: Option<i64>,
    /// The top cause of the latest diagnosis that found it.
    pub top_cause: Option<CauseSummary>,
    /// Top causes it had before, oldest first (when the ranking changed).
    pub earlier_causes: Vec<String>,
    /// Diagnoses that found it.
    pub evaluations: u64,
    /// The latest diagnosis that found it, whole.
    pub diagnosis: Diagnosis,
}

/// What an observation changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new incident opened.
    Opened(u64),
    /// An open incident's top cause changed.
    CauseChanged(u64),
    /// An incident resolved.
    Resolved(u64),
}

/// The incidents of a data directory.
#[derive(Debug)]
pub struct Incidents {
    vfs: Arc<dyn Vfs>,
    path: PathBuf,
    list: Vec<Incident>,
    quiet: u32,
}

fn summary(d: &Diagnosis) -> Option<CauseSummary> {
    d.causes.first().map(|c| CauseSummary {
        name: c.name.clone(),
        kind: c.kind.clone(),
        service: c.service.clone(),
        score: c.score,
        explanation: c.explanation.clone(),
    })
}

impl Incidents {
    /// Loads `dir/incidents` (none yet: an empty list). A damaged file is
    /// an error naming it: incidents are not silently forgotten.
    pub fn open(vfs: Arc<dyn Vfs>, dir: &Path) -> Result<Incidents> {
        let path = dir.join("incidents");
        let list = match vfs.read(&path) {
            Ok(bytes) => decode(&bytes).map_err(|why| {
                Error::Corrupt(format!(
                    "{}: {why}; move it aside to start a new incident list",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::Io(format!("{}: {e}", path.display()))),
        };
        Ok(Incidents {
            vfs,
            path,
            list,
            quiet: 0,
        })
    }

    /// [`Incidents::open`] on the real file system.
    pub fn in_dir(dir: &Path) -> Result<Incidents> {
        Incidents::open(Arc::new(sextant_wal::StdFs), dir)
    }

    /// Every incident, newest first.
    pub fn list(&self) -> impl Iterator<Item = &Incident> {
        self.list.iter().rev()
    }

    /// The incident `id`.
    pub fn get(&self, id: u64) -> Option<&Incident> {
        self.list.iter().find(|i| i.id == id)
    }

    /// The open incident, if any.
    pub fn open_incident(&self) -> Option<&Incident> {
        self.list.iter().rev().find(|i| i.status == "open")
    }

    /// Takes in the latest diagnosis, saves the list if it changed, and
    /// says what changed.
    pub fn observe(&mut self, d: &Diagnosis) -> Result<Vec<Change>> {
        let now = d.window.end;
        let mut changes = Vec::new();
        let open = self.list.iter().rposition(|i| i.status == "open");
        match (d.incident, open) {
            (true, Some(i)) => {
                self.quiet = 0;
                let inc = &mut self.list[i];
                let top = summary(d);
                if top.as_ref().map(|c| &c.name) != inc.top_cause.as_ref().map(|c| &c.name) {
                    if let Some(old) = &inc.top_cause {
                        inc.earlier_causes.push(old.name.clone());
                    }
                    changes.push(Change::CauseChanged(inc.id));
                }
                inc.top_cause = top;
                inc.updated = now;
                inc.evaluations += 1;
                let mut d = d.clone();
                // A deploy an earlier evaluation saw stays evidence while
                // its cause is still blamed: later windows begin after it
                // and no longer see the version change.
                for c in d.causes.iter_mut().filter(|c| c.evidence.change.is_none()) {
                    if let Some(p) = inc.diagnosis.causes.iter().find(|p| p.name == c.name) {
                        c.evidence.change = p.evidence.change.clone();
                    }
                }
                inc.diagnosis = d;
            }
            (true, None) => {
                self.quiet = 0;
                let id = self.list.last().map_or(1, |i| i.id + 1);
                self.list.push(Incident {
                    id,
                    status: "open".into(),
                    opened: now,
                    updated: now,
                    resolved: None,
                    top_cause: summary(d),
                    earlier_causes: Vec::new(),
                    evaluations: 1,
                    diagnosis: d.clone(),
                });
                changes.push(Change::Opened(id));
            }
            (false, Some(i)) => {
                self.quiet += 1;
                if self.quiet >= QUIET_TO_RESOLVE {
                    let inc = &mut self.list[i];
                    inc.status = "resolved".into();
                    inc.resolved = Some(now);
                    changes.push(Change::Resolved(inc.id));
                    self.quiet = 0;
                }
            }
            (false, None) => self.quiet = 0,
        }
        if !changes.is_empty() || d.incident {
            while self.list.len() > MAX_KEPT {
                match self.list.iter().position(|i| i.status != "open") {
                    Some(p) => self.list.remove(p),
                    None => break,
                };
            }
            self.save()?;
        }
        Ok(changes)
    }

    fn save(&self) -> Result<()> {
        let bytes = encode(&self.list)?;
        replace_file_durable(self.vfs.as_ref(), &self.path, &bytes)
            .map_err(|e| Error::Io(format!("{}: {e}", self.path.display())))
    }
}

/// The file: magic `SXIN`, version (u32 LE), payload length (u32 LE),
/// CRC-32C of the payload (u32 LE), then the payload: the incidents as a
/// JSON array.
fn encode(list: &[Incident]) -> Result<Vec<u8>> {
    let payload =
        serde_json::to_vec(list).map_err(|e| Error::Io(format!("encoding incidents: {e}")))?;
    let len = u32::try_from(payload.len())
        .map_err(|_| Error::Io("the incident list is over 4 GiB".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

fn decode(bytes: &[u8]) -> std::result::Result<Vec<Incident>, String> {
    if bytes.len() < HEADER_LEN || &bytes[..4] != MAGIC {
        return Err("not an incident file (bad magic)".into());
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if word(4) != VERSION {
        return Err(format!("version {} (this build reads {VERSION})", word(4)));
    }
    let len = word(8) as usize;
    let payload = &bytes[HEADER_LEN..];
    if payload.len() != len {
        return Err(format!(
            "payload of {} bytes, header says {len}",
            payload.len()
        ));
    }
    if crc32c::crc32c(payload) != word(12) {
        return Err("checksum mismatch".into());
    }
    serde_json::from_slice(payload).map_err(|e| format!("payload: {e}"))
}

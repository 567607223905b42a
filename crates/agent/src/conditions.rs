//! What each policy object's `status.conditions` should say, from one
//! render of all of them: sans IO, so the status writer only compares and
//! patches.
//!
//! - `Ready`: the object itself is valid (`True`, `Valid`) or not
//!   (`False`, `Invalid`, with the renderer's field errors).
//! - `Applied`: its requirement is in the rendered files (`True`,
//!   `Applied`); `False` when every scope was dropped as a conflict or it
//!   is invalid; `Unknown` (`RenderFailed`) when another object or the
//!   base policy keeps the whole render from happening, since nodes then
//!   keep the files of the last good render.
//! - `ScopeConflict` (ImagePolicy only): `True` naming each dropped scope
//!   and the ClusterImagePolicy scope containing it, `False`
//!   (`NoConflict`) once none is dropped, so it clears itself. Left as it
//!   was when nothing renders.
//!
//! Every condition carries the object's `metadata.generation` as
//! `observedGeneration`; `lastTransitionTime` moves only when the status
//! (True/False/Unknown) does.

use std::collections::BTreeMap;

use criguard_kube_policy::{Conflict, Kind, ObjectRef, RenderError, RenderErrors, Rendered};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
pub const APPLIED: &str = "Applied";
pub const SCOPE_CONFLICT: &str = "ScopeConflict";

/// Longest message written into a condition; the rest is cut with "…".
pub const MAX_MESSAGE: usize = 1024;

/// A condition without its transition time: what is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub type_: &'static str,
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
}

/// The conditions each object should have. `None` for `ScopeConflict`
/// means "leave it as it is".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectConditions {
    pub ready: Wanted,
    pub applied: Wanted,
    pub scope_conflict: Option<Wanted>,
}

/// The wanted conditions of every object in `objects`, from `result`, the
/// render of exactly those objects.
pub fn wanted(
    objects: &[ObjectRef],
    result: &Result<Rendered, RenderErrors>,
) -> BTreeMap<ObjectRef, ObjectConditions> {
    let mut out = BTreeMap::new();
    match result {
        Ok(rendered) => {
            for object in objects {
                let conflicts: Vec<&Conflict> = rendered
                    .conflicts
                    .iter()
                    .filter(|c| {
                        object.kind == Kind::ImagePolicy
                            && object.namespace.as_deref() == Some(c.namespace.as_str())
                            && object.name == c.name
                    })
                    .collect();
                let applied = if rendered.applied.contains(object) {
                    wanted_condition(APPLIED, "True", "Applied", "in the rendered policy files")
                } else if !conflicts.is_empty() {
                    wanted_condition(
                        APPLIED,
                        "False",
                        "ScopeConflict",
                        "every scope conflicts with a ClusterImagePolicy; nothing of it is in force",
                    )
                } else {
                    wanted_condition(
                        APPLIED,
                        "False",
                        "NotRendered",
                        "not in the rendered policy files",
                    )
                };
                let scope_conflict = (object.kind == Kind::ImagePolicy).then(|| {
                    if conflicts.is_empty() {
                        wanted_condition(
                            SCOPE_CONFLICT,
                            "False",
                            "NoConflict",
                            "no scope conflicts with a ClusterImagePolicy",
                        )
                    } else {
                        let each: Vec<String> = conflicts
                            .iter()
                            .map(|c| {
                                format!(
                                    "scope {:?} is dropped: ClusterImagePolicy {:?} covers it with scope {:?}",
                                    c.scope, c.cluster_policy, c.cluster_scope
                                )
                            })
                            .collect();
                        wanted_condition(SCOPE_CONFLICT, "True", "ScopeConflict", &each.join("; "))
                    }
                });
                out.insert(
                    object.clone(),
                    ObjectConditions {
                        ready: wanted_condition(
                            READY,
                            "True",
                            "Valid",
                            "valid; rendered into the nodes' policy files",
                        ),
                        applied,
                        scope_conflict,
                    },
                );
            }
        }
        Err(errors) => {
            let mut own: BTreeMap<&ObjectRef, Vec<String>> = BTreeMap::new();
            let mut general = Vec::new();
            for error in &errors.0 {
                match error {
                    RenderError::InvalidObject(field) => own
                        .entry(&field.object)
                        .or_default()
                        .push(format!("{}: {}", field.field, field.message)),
                    other => general.push(other.to_string()),
                }
            }
            let why = general
                .first()
                .cloned()
                .or_else(|| own.keys().next().map(|o| format!("{o} is invalid")))
                .unwrap_or_else(|| errors.to_string());
            for object in objects {
                let conditions = match own.get(object) {
                    Some(problems) => {
                        let message = problems.join("; ");
                        ObjectConditions {
                            ready: wanted_condition(READY, "False", "Invalid", &message),
                            applied: wanted_condition(APPLIED, "False", "Invalid", &message),
                            scope_conflict: None,
                        }
                    }
                    None => ObjectConditions {
                        ready: wanted_condition(READY, "True", "Valid", "valid"),
                        applied: wanted_condition(
                            APPLIED,
                            "Unknown",
                            "RenderFailed",
                            &format!(
                                "nothing is rendered while {why}; nodes keep their last good policy files"
                            ),
                        ),
                        scope_conflict: None,
                    },
                };
                out.insert(object.clone(), conditions);
            }
        }
    }
    out
}

fn wanted_condition(
    type_: &'static str,
    status: &'static str,
    reason: &'static str,
    message: &str,
) -> Wanted {
    Wanted {
        type_,
        status,
        reason,
        message: bounded(message),
    }
}

fn bounded(message: &str) -> String {
    if message.len() <= MAX_MESSAGE {
        return message.to_owned();
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// The conditions to write, or `None` when `current` already says what is
/// wanted for `generation` (so nothing is patched). Conditions of other
/// types are kept; a type whose status is unchanged keeps its
/// `lastTransitionTime`.
pub fn next_conditions(
    current: &[Condition],
    wanted: &ObjectConditions,
    generation: Option<i64>,
    now: Time,
) -> Option<Vec<Condition>> {
    let mut next: Vec<Condition> = Vec::new();
    let mut changed = false;
    let ours = [
        Some(&wanted.ready),
        Some(&wanted.applied),
        wanted.scope_conflict.as_ref(),
    ];
    for want in ours.into_iter().flatten() {
        let old = current.iter().find(|c| c.type_ == want.type_);
        let same = old.is_some_and(|c| {
            c.status == want.status
                && c.reason == want.reason
                && c.message == want.message
                && c.observed_generation == generation
        });
        changed |= !same;
        let last_transition_time = match old {
            Some(c) if c.status == want.status => c.last_transition_time.clone(),
            _ => now.clone(),
        };
        next.push(Condition {
            type_: want.type_.to_owned(),
            status: want.status.to_owned(),
            reason: want.reason.to_owned(),
            message: want.message.clone(),
            observed_generation: generation,
            last_transition_time,
        });
    }
    // Others' conditions (and ScopeConflict when left as it was) stay.
    for condition in current {
        if !next.iter().any(|c| c.type_ == condition.type_) {
            next.push(condition.clone());
        }
    }
    next.truncate(criguard_kube_policy::MAX_CONDITIONS);
    changed.then_some(next)
}

#[cfg(test)]
mod tests {
    use criguard_kube_policy::FieldError;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn namespaced(ns: &str, name: &str) -> ObjectRef {
        ObjectRef {
            kind: Kind::ImagePolicy,
            namespace: Some(ns.into()),
            name: name.into(),
        }
    }

    fn cluster(name: &str) -> ObjectRef {
        ObjectRef {
            kind: Kind::ClusterImagePolicy,
            namespace: None,
            name: name.into(),
        }
    }

    fn time(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn a_conflict_is_reported_and_clears_itself() {
        let ip = namespaced("team", "app");
        let cip = cluster("all");
        let with_conflict = Ok(Rendered {
            applied: vec![cip.clone()],
            conflicts: vec![Conflict {
                namespace: "team".into(),
                name: "app".into(),
                scope: "quay.io/team".into(),
                cluster_policy: "all".into(),
                cluster_scope: "quay.io".into(),
            }],
            ..Rendered::default()
        });
        let objects = [cip.clone(), ip.clone()];
        let first = wanted(&objects, &with_conflict);
        let conflict = first[&ip].scope_conflict.clone().unwrap();
        assert_eq!(conflict.status, "True");
        assert!(
            conflict.message.contains("\"quay.io/team\""),
            "{conflict:?}"
        );
        assert_eq!(first[&ip].applied.status, "False");
        assert_eq!(first[&ip].applied.reason, "ScopeConflict");
        assert_eq!(first[&cip].applied.status, "True");
        assert!(first[&cip].scope_conflict.is_none());

        let written = next_conditions(&[], &first[&ip], Some(1), time(10)).unwrap();
        let resolved = Ok(Rendered {
            applied: vec![cip, ip.clone()],
            ..Rendered::default()
        });
        let second = wanted(&objects, &resolved);
        let next = next_conditions(&written, &second[&ip], Some(2), time(20)).unwrap();
        let conflict = next.iter().find(|c| c.type_ == SCOPE_CONFLICT).unwrap();
        assert_eq!(conflict.status, "False");
        assert_eq!(conflict.reason, "NoConflict");
        assert_eq!(conflict.observed_generation, Some(2));
        assert_eq!(conflict.last_transition_time, time(20));
        let ready = next.iter().find(|c| c.type_ == READY).unwrap();
        // Ready stayed True: its transition time stays too.
        assert_eq!(ready.last_transition_time, time(10));
    }

    #[test]
    fn nothing_is_patched_when_nothing_changed() {
        let ip = namespaced("team", "app");
        let result = Ok(Rendered {
            applied: vec![ip.clone()],
            ..Rendered::default()
        });
        let want = &wanted(std::slice::from_ref(&ip), &result)[&ip];
        let written = next_conditions(&[], want, Some(3), time(1)).unwrap();
        assert_eq!(next_conditions(&written, want, Some(3), time(2)), None);
        // A new generation is a change, even with the same words.
        assert!(next_conditions(&written, want, Some(4), time(2)).is_some());
    }

    #[test]
    fn an_invalid_object_is_not_ready_and_the_others_are_unknown() {
        let bad = cluster("bad");
        let good = namespaced("team", "app");
        let result = Err(RenderErrors(vec![RenderError::InvalidObject(FieldError {
            object: bad.clone(),
            field: "spec.scopes[0]".into(),
            message: "not a scope".into(),
        })]));
        let objects = [bad.clone(), good.clone()];
        let all = wanted(&objects, &result);
        assert_eq!(all[&bad].ready.status, "False");
        assert_eq!(all[&bad].ready.message, "spec.scopes[0]: not a scope");
        assert_eq!(all[&good].ready.status, "True");
        assert_eq!(all[&good].applied.status, "Unknown");
        assert!(
            all[&good]
                .applied
                .message
                .contains("ClusterImagePolicy/bad is invalid"),
            "{:?}",
            all[&good].applied
        );
        // A ScopeConflict written before is left as it was.
        let earlier = Condition {
            type_: SCOPE_CONFLICT.into(),
            status: "True".into(),
            reason: "ScopeConflict".into(),
            message: "x".into(),
            observed_generation: Some(1),
            last_transition_time: time(1),
        };
        let next = next_conditions(
            std::slice::from_ref(&earlier),
            &all[&good],
            Some(1),
            time(5),
        )
        .unwrap();
        assert!(next.contains(&earlier));
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "é".repeat(MAX_MESSAGE);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_MESSAGE + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}

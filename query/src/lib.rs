//! Sextant's query language. The PromQL parser and evaluator land here
//! (issue 4); the crate exists now so the workspace has its final shape and
//! the dependency order (storage below, server above) is fixed.

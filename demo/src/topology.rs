//! The simulated system: a retail brokerage of 26 services. Each entry
//! route is a fixed call tree; a request walks it, calling children one
//! after another, so a slow leaf makes every ancestor slow.

/// One call in a route's tree: a span of `service` named `op`.
pub struct Call {
    /// The service handling the call.
    pub service: &'static str,
    /// The operation (span name).
    pub op: &'static str,
    /// Typical time spent in the call itself, ms (children excluded).
    pub self_ms: f64,
    /// Whether the callee is a datastore (database, cache, queue): its
    /// span is a client span carrying `db.system`.
    pub store: Option<&'static str>,
    /// Calls made, in order.
    pub children: &'static [Call],
}

const fn call(
    service: &'static str,
    op: &'static str,
    self_ms: f64,
    children: &'static [Call],
) -> Call {
    Call {
        service,
        op,
        self_ms,
        store: None,
        children,
    }
}

const fn store(service: &'static str, system: &'static str, op: &'static str, ms: f64) -> Call {
    Call {
        service,
        op,
        self_ms: ms,
        store: Some(system),
        children: &[],
    }
}

/// An entry route: the root call and its share of the traffic.
pub struct Route {
    /// HTTP method and path, e.g. `POST /orders`.
    pub name: &'static str,
    /// Fraction of requests.
    pub share: f64,
    /// Extra traffic factor at month end (statements, rebalancing).
    pub month_end: f64,
    /// The call tree.
    pub root: Call,
}

const AUTH: Call = call(
    "auth",
    "auth.verify",
    2.0,
    &[store("cache", "redis", "GET session", 0.4)],
);
const QUOTE: Call = call(
    "market-data",
    "market-data.quote",
    3.0,
    &[store("cache", "redis", "GET quote", 0.4)],
);

/// Every route of the system.
pub const ROUTES: [Route; 7] = [
    Route {
        name: "GET /portfolio",
        share: 0.30,
        month_end: 1.0,
        root: call(
            "web-gateway",
            "GET /portfolio",
            3.0,
            &[
                AUTH,
                call(
                    "portfolio",
                    "portfolio.get",
                    6.0,
                    &[
                        call(
                            "ledger",
                            "ledger.positions",
                            4.0,
                            &[store("ledger-db", "postgresql", "SELECT positions", 6.0)],
                        ),
                        call("quotes", "quotes.batch", 2.0, &[QUOTE]),
                        call("fx-rates", "fx-rates.get", 1.5, &[]),
                    ],
                ),
            ],
        ),
    },
    Route {
        name: "GET /quotes",
        share: 0.25,
        month_end: 1.0,
        root: call(
            "mobile-bff",
            "GET /quotes",
            2.0,
            &[call("quotes", "quotes.get", 2.0, &[QUOTE])],
        ),
    },
    Route {
        name: "POST /orders",
        share: 0.18,
        month_end: 1.2,
        root: call(
            "web-gateway",
            "POST /orders",
            4.0,
            &[
                AUTH,
                call(
                    "orders",
                    "orders.create",
                    5.0,
                    &[
                        call(
                            "risk",
                            "risk.check",
                            6.0,
                            &[call(
                                "accounts",
                                "accounts.balance",
                                2.0,
                                &[store("accounts-db", "postgresql", "SELECT balance", 4.0)],
                            )],
                        ),
                        QUOTE,
                        call(
                            "matching-engine",
                            "matching-engine.submit",
                            8.0,
                            &[store("orders-db", "postgresql", "INSERT order", 5.0)],
                        ),
                        call(
                            "notifications",
                            "notifications.send",
                            2.0,
                            &[call("email", "email.send", 12.0, &[])],
                        ),
                    ],
                ),
            ],
        ),
    },
    Route {
        name: "POST /payments",
        share: 0.10,
        month_end: 2.0,
        root: call(
            "web-gateway",
            "POST /payments",
            4.0,
            &[
                AUTH,
                call(
                    "payments",
                    "payments.transfer",
                    6.0,
                    &[
                        call("compliance", "compliance.screen", 9.0, &[]),
                        call(
                            "ledger",
                            "ledger.post",
                            3.0,
                            &[store("ledger-db", "postgresql", "INSERT entry", 7.0)],
                        ),
                        call(
                            "settlement",
                            "settlement.enqueue",
                            2.0,
                            &[store("kafka", "kafka", "publish settlements", 1.5)],
                        ),
                    ],
                ),
            ],
        ),
    },
    Route {
        name: "GET /search",
        share: 0.10,
        month_end: 1.0,
        root: call(
            "web-gateway",
            "GET /search",
            2.0,
            &[call(
                "search",
                "search.query",
                15.0,
                &[call(
                    "recommendations",
                    "recommendations.rank",
                    10.0,
                    &[call("user-profile", "user-profile.get", 3.0, &[])],
                )],
            )],
        ),
    },
    Route {
        name: "GET /account",
        share: 0.05,
        month_end: 1.0,
        root: call(
            "mobile-bff",
            "GET /account",
            2.0,
            &[
                AUTH,
                call(
                    "accounts",
                    "accounts.get",
                    3.0,
                    &[store("accounts-db", "postgresql", "SELECT account", 3.0)],
                ),
            ],
        ),
    },
    Route {
        name: "GET /statements",
        share: 0.02,
        month_end: 8.0,
        root: call(
            "web-gateway",
            "GET /statements",
            3.0,
            &[
                AUTH,
                call(
                    "reporting",
                    "reporting.statement",
                    40.0,
                    &[call(
                        "ledger",
                        "ledger.history",
                        5.0,
                        &[store("ledger-db", "postgresql", "SELECT history", 25.0)],
                    )],
                ),
            ],
        ),
    },
];

/// Every service, sorted.
pub fn services() -> Vec<&'static str> {
    fn walk(c: &Call, out: &mut Vec<&'static str>) {
        out.push(c.service);
        c.children.iter().for_each(|k| walk(k, out));
    }
    let mut out = Vec::new();
    ROUTES.iter().for_each(|r| walk(&r.root, &mut out));
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn enough_services_and_shares_add_up() {
        assert!(super::services().len() >= 20, "{:?}", super::services());
        let total: f64 = super::ROUTES.iter().map(|r| r.share).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }
}

//! Current Prometheus PromQL beyond the shared scripts, in the scripts'
//! own format: duration expressions and the fill modifiers. (Prometheus'
//! newer test files exercise the same; these are Sextant's own cases.)

use sextant_query::promqltest::run_script;

fn passes(script: &str) {
    let r = run_script(script).unwrap();
    assert!(
        r.failed == 0 && r.passed > 0,
        "{}: {:?}",
        r.counts(),
        r.failures
    );
}

#[test]
fn durations_can_be_computed() {
    passes(
        r#"
load 1m
  hits{svc="api"} 0+10x60

eval instant at 30m increase(hits[10m+5m])
  {svc="api"} 150

eval instant at 30m increase(hits[1800/2])
  {svc="api"} 150

eval instant at 30m hits offset (5m*2)
  hits{svc="api"} 200

eval instant at 30m hits offset 5m + 1
  {svc="api"} 251

eval instant at 30m hits offset -(1m-2m)
  hits{svc="api"} 290

eval range from 10m to 20m step 5m count_over_time(hits[step()])
  {svc="api"} 5 5 5

eval range from 10m to 20m step 5m count_over_time(hits[min_of(range(), 2m)])
  {svc="api"} 2 2 2

eval range from 10m to 20m step 5m hits offset max_of(step(), 1m)
  hits{svc="api"} 50 100 150

eval instant at 30m hits offset range()
  hits{svc="api"} 300

eval_fail instant at 30m hits[5m-5m]
"#,
    );
}

#[test]
fn fill_modifiers_stand_in_for_missing_series() {
    passes(
        r#"
load 1m
  sent{queue="a"} 5
  sent{queue="b"} 7
  acked{queue="a"} 4
  acked{queue="c"} 9
  quota{tier="gold"} 100
  usage{tier="gold", user="x"} 30
  usage{tier="free", user="y"} 3

eval instant at 0m sent - fill(0) acked
  {queue="a"} 1
  {queue="b"} 7
  {queue="c"} -9

eval instant at 0m sent - fill_right(0) acked
  {queue="a"} 1
  {queue="b"} 7

eval instant at 0m sent - fill_left(0) acked
  {queue="a"} 1
  {queue="c"} -9

eval instant at 0m sent > fill(6) acked
  sent{queue="a"} 5
  sent{queue="b"} 7

eval instant at 0m sent > bool fill(6) acked
  {queue="a"} 1
  {queue="b"} 1
  {queue="c"} 0

eval instant at 0m usage / on(tier) group_left fill_right(50) quota
  {tier="gold", user="x"} 0.3
  {tier="free", user="y"} 0.06

eval_fail instant at 0m sent and fill(0) acked
"#,
    );
}

#[test]
fn classic_histogram_edge_cases_and_sampling() {
    passes(
        r#"
load 1m
  lat_bucket{le="-10"} 4
  lat_bucket{le="-5"} 6
  lat_bucket{le="0"} 8
  lat_bucket{le="+Inf"} 10
  load{node="1"} 1
  load{node="2"} 2
  load{node="3"} 3
  load{node="4"} 4
  load{node="5"} 5
  load{node="6"} 6
  a_bucket{le="1", job="x"} 1
  b_bucket{le="1", job="x"} 1

# Below the first negative bound nothing is interpolated: the first
# bucket counts whole. Half of (-10, -5] is 1 observation.
eval instant at 0m histogram_fraction(-Inf, -7.5, lat_bucket)
  {} 0.5

eval instant at 0m histogram_fraction(-Inf, +Inf, lat_bucket)
  {} 1

eval instant at 0m histogram_quantile(1.5, lat_bucket)
  expect warn
  {} +Inf

eval instant at 0m histogram_quantile(NaN, nothing_here_bucket)
  expect warn

eval_fail instant at 0m histogram_quantile(0.5, {__name__=~"(a|b)_bucket"})

eval instant at 0m count(limit_ratio(1.5, load))
  expect warn
  {} 6

# A negative ratio keeps exactly what the positive one leaves out.
eval instant at 0m count(limit_ratio(0.4, load)) + count(limit_ratio(-0.6, load))
  {} 6

eval instant at 0m count(limit_ratio(0.4, load) and limit_ratio(-0.6, load))
"#,
    );
}

#[test]
fn information_is_told_apart_from_warnings() {
    passes(
        r#"
load 1m
  queue_depth 0+1x10
  jobs_total 0+1x10
  wait_bucket{le="1"} 5
  wait_bucket{le="2"} 4
  wait_bucket{le="+Inf"} 10

eval instant at 10m rate(queue_depth[5m])
  expect info
  expect no_warn
  {} 0.016666666666666666

eval instant at 10m rate(jobs_total[5m])
  expect no_info
  {} 0.016666666666666666

eval instant at 0m histogram_quantile(0.5, wait_bucket)
  expect info
  expect no_warn
  {} 1
"#,
    );
}

#[test]
fn info_adds_the_labels_of_the_info_series() {
    passes(
        r#"
load 1m
  http_requests_total{job="api", instance="10.0.0.1:80", code="200"} 0+5x10
  http_requests_total{job="web", instance="10.0.0.2:80", code="200"} 0+1x10
  target_info{job="api", instance="10.0.0.1:80", k8s_namespace="prod", host="n1"} 1x10
  build_info{job="api", instance="10.0.0.1:80", version="2.1"} 1x10

eval instant at 5m info(http_requests_total)
  http_requests_total{job="api", instance="10.0.0.1:80", code="200", k8s_namespace="prod", host="n1"} 25
  http_requests_total{job="web", instance="10.0.0.2:80", code="200"} 5

eval instant at 5m info(http_requests_total, {k8s_namespace=~".+"})
  http_requests_total{job="api", instance="10.0.0.1:80", code="200", k8s_namespace="prod"} 25

eval instant at 5m info(http_requests_total, {__name__="build_info"})
  http_requests_total{job="api", instance="10.0.0.1:80", code="200", version="2.1"} 25
  http_requests_total{job="web", instance="10.0.0.2:80", code="200"} 5

eval instant at 5m sum by (k8s_namespace) (info(rate(http_requests_total[5m]), {k8s_namespace=~".*"}))
  {k8s_namespace="prod"} 0.08333333333333333
  {} 0.016666666666666666

eval_fail instant at 5m info(http_requests_total, rate(http_requests_total[1m]))
"#,
    );
}

#[test]
fn type_and_unit_labels_go_with_the_name() {
    passes(
        r#"
load 1m
  jobs_total{__type__="counter", __unit__="jobs", queue="a"} 0+6x10
  jobs_total{__type__="counter", __unit__="jobs", queue="b"} 0+12x10

eval instant at 5m rate(jobs_total[5m])
  {queue="a"} 0.1
  {queue="b"} 0.2

eval instant at 5m sum by (__type__) (jobs_total)
  {__type__="counter"} 90

eval instant at 5m (jobs_total + 1) and jobs_total{queue="a"}
  {queue="a"} 31

# Matching leaves out only the name: the product of two vectors lost the
# type and unit the right side still has, so nothing matches.
eval instant at 5m (jobs_total * jobs_total) and jobs_total{queue="a"}
"#,
    );
}

/// The test runner removes names late, as Prometheus' test engine does
/// (`promql-delayed-name-removal`).
#[test]
fn names_dropped_late_can_still_be_read_and_kept() {
    passes(
        r#"
load 1m
  reqs_total{svc="a"} 0+6x10
  errs_total{svc="a"} 0+3x10

# Eagerly, both would be {svc="a"} and collide.
eval instant at 5m label_replace(rate({svc="a"}[5m]), "was", "$1", "__name__", "(.*)")
  {svc="a", was="reqs_total"} 0.1
  {svc="a", was="errs_total"} 0.05

eval instant at 5m label_replace(rate({svc="a"}[5m]), "__name__", "r_$1", "__name__", "(.*)")
  r_reqs_total{svc="a"} 0.1
  r_errs_total{svc="a"} 0.05

eval instant at 5m sum(rate({svc="a"}[5m])) by (svc)
  {svc="a"} 0.15

eval instant at 5m sum by (__name__) (reqs_total)
  reqs_total 30

eval instant at 5m sum by (__name__) (rate(reqs_total[5m]))
  {} 0.1

eval_fail instant at 5m sum by (__name__) (rate({svc="a"}[5m]))

eval instant at 5m last_over_time(abs(reqs_total)[3m:])
  {svc="a"} 30

eval instant at 5m reqs_total > bool 10
  {svc="a"} 1

eval instant at 5m rate(reqs_total[5m]) > 0
  {svc="a"} 0.1

clear
load 10m
  a 1 _
  b 3 4

# Two series, one label set once the names go, at different times: one series.
eval range from 0 to 20m step 10m -a or -b
  {} -1 -4 _
"#,
    );
}

#[test]
fn anchored_and_smoothed_windows_measure_their_edges_exactly() {
    passes(
        r#"
load 1m
  orders_total 0 10 20 30 40 5 15

# anchored: the last sample at or before the window start anchors it, no
# extrapolation: 40 - 10 over (1m, 4m].
eval instant at 4m increase(orders_total[3m] anchored)
  {} 30

# A reset inside the window is added back: 10 -> 40, then 40 -> 15.
eval instant at 6m increase(orders_total[5m] anchored)
  {} 45

eval instant at 6m resets(orders_total[5m] anchored)
  {} 1

# smoothed: the values at the edges lie on the line between the samples
# around them: (1m30s, 3m30s] reads 15 and 35.
eval instant at 3m30s increase(orders_total[2m] smoothed)
  {} 20

eval instant at 3m30s rate(orders_total[2m] smoothed)
  {} 0.16666666666666666

eval_fail instant at 4m max_over_time(orders_total[3m] anchored)
  expected_fail_message anchored modifier can only be used with: changes, delta, increase, rate, resets - not with max_over_time

eval_fail instant at 4m changes(orders_total[3m] smoothed)
"#,
    );
}

#[test]
fn a_smoothed_instant_selector_reads_the_line_between_samples() {
    passes(
        r#"
load 1m
  temperature 10 20 40

eval instant at 30s temperature smoothed
  temperature 15

eval instant at 1m temperature smoothed
  temperature 20

eval instant at 90s temperature smoothed
  temperature 30

eval instant at 3m temperature smoothed
  temperature 40
"#,
    );
}

#[test]
fn anchored_and_smoothed_windows_over_native_histograms() {
    passes(
        r#"
load 10s
  lat_seconds {{schema:0 count:2 sum:2 buckets:[2]}}+{{count:2 sum:2 buckets:[2]}}x6
  jobs {{schema:0 count:5 sum:5 buckets:[5]}} {{schema:0 count:8 sum:8 buckets:[8]}} {{schema:0 count:2 sum:2 buckets:[2] counter_reset_hint:reset}} {{schema:0 count:4 sum:4 buckets:[4]}}

# Anchored: from the sample at 10s (count 4) to the one at 30s (count 8).
eval instant at 35s histogram_count(increase(lat_seconds[25s] anchored))
  {} 4

# Smoothed: the right edge at 35s lies halfway from 8 to 10.
eval instant at 35s histogram_count(increase(lat_seconds[25s] smoothed))
  {} 5

eval instant at 35s histogram_sum(rate(lat_seconds[25s] smoothed))
  {} 0.2

# 5 → 8, reset to 2, → 4: the 8 lost at the reset is added back.
eval instant at 30s histogram_count(increase(jobs[30s] anchored))
  {} 7

eval instant at 25s histogram_count(jobs smoothed)
  {} 3

# Across the reset the counter restarts from empty: half of 2.
eval instant at 15s histogram_count(jobs smoothed)
  {} 1

eval instant at 30s resets(jobs[15s] anchored)
  {} 1

eval_fail instant at 30s jobs[30s] anchored
"#,
    );
}

#[test]
fn custom_bucket_fractions_start_at_zero_and_bounds_are_read_as_numbers() {
    passes(
        r#"
load 1m
  wait_seconds {{schema:-53 sum:50 count:100 custom_values:[1 2 3] buckets:[4 2 3 91]}}

# The first bucket, (-Inf, 1], holds only positive observations: spread
# over [0, 1] as in Prometheus, so half of it lies below 0.5.
eval instant at 0m histogram_fraction(0, 0.5, wait_seconds)
  {} 0.02

clear
# `0.2` and `2e-1` are one bound: one bucket of the converted histogram.
load_with_nhcb 1m
  rt_bucket{le="0.2"} 0+1x5
  rt_bucket{le="2e-1"} 0+1x5
  rt_bucket{le="+Inf"} 0+4x5

eval instant at 5m histogram_count(rt)
  {} 20

eval instant at 5m histogram_fraction(0, 0.2, rt)
  {} 0.25
"#,
    );
}

//! Value types of expressions and the function table used for type checks.

/// The type an expression evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// A single number.
    Scalar,
    /// One sample per series.
    Vector,
    /// A range of samples per series.
    Matrix,
    /// A string.
    String,
    /// Log records (`logs(...)`).
    Logs,
    /// Spans (`spans(...)`).
    Spans,
    /// Whole traces (`trace(...)`, `traces(...)`).
    Traces,
}

impl ValueType {
    /// Prometheus' name for error messages.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
            ValueType::Logs => "log stream",
            ValueType::Spans => "span set",
            ValueType::Traces => "trace list",
        }
    }
}

use ValueType::{Matrix as M, Scalar as S, String as Str, Vector as V};

/// A function's signature: argument types, how many trailing ones are
/// optional, whether the last repeats, and the return type.
pub struct Signature {
    /// Argument types.
    pub args: &'static [ValueType],
    /// Trailing arguments that may be left out.
    pub optional: usize,
    /// The last argument may repeat.
    pub variadic: bool,
    /// The result type.
    pub ret: ValueType,
}

const fn sig(args: &'static [ValueType], optional: usize, ret: ValueType) -> Signature {
    Signature {
        args,
        optional,
        variadic: false,
        ret,
    }
}

/// The signature of function `name`, if it exists.
pub fn signature(name: &str) -> Option<Signature> {
    Some(match name {
        "abs" | "ceil" | "floor" | "exp" | "sqrt" | "ln" | "log2" | "log10" | "sgn" | "acos"
        | "acosh" | "asin" | "asinh" | "atan" | "atanh" | "cos" | "cosh" | "sin" | "sinh"
        | "tan" | "tanh" | "deg" | "rad" | "timestamp" | "histogram_count" | "histogram_sum"
        | "histogram_avg" | "histogram_stddev" | "histogram_stdvar" => sig(&[V], 0, V),
        "sort" | "sort_desc" => sig(&[V], 0, V),
        "sort_by_label" | "sort_by_label_desc" => Signature {
            args: &[V, Str],
            optional: 1,
            variadic: true,
            ret: V,
        },
        "round" => sig(&[V, S], 1, V),
        "clamp" => sig(&[V, S, S], 0, V),
        "clamp_min" | "clamp_max" => sig(&[V, S], 0, V),
        "absent" => sig(&[V], 0, V),
        "absent_over_time" | "present_over_time" => sig(&[M], 0, V),
        "rate"
        | "increase"
        | "delta"
        | "irate"
        | "idelta"
        | "deriv"
        | "resets"
        | "changes"
        | "avg_over_time"
        | "min_over_time"
        | "max_over_time"
        | "sum_over_time"
        | "count_over_time"
        | "last_over_time"
        | "stddev_over_time"
        | "stdvar_over_time"
        | "mad_over_time"
        | "first_over_time"
        | "ts_of_min_over_time"
        | "ts_of_max_over_time"
        | "ts_of_last_over_time"
        | "ts_of_first_over_time" => sig(&[M], 0, V),
        "quantile_over_time" => sig(&[S, M], 0, V),
        "predict_linear" => sig(&[M, S], 0, V),
        "double_exponential_smoothing" | "holt_winters" => sig(&[M, S, S], 0, V),
        "histogram_quantile" => sig(&[S, V], 0, V),
        "histogram_quantiles" => Signature {
            args: &[V, Str, S],
            optional: 0,
            variadic: true,
            ret: V,
        },
        "histogram_fraction" => sig(&[S, S, V], 0, V),
        "label_replace" => sig(&[V, Str, Str, Str, Str], 0, V),
        "label_join" => Signature {
            args: &[V, Str, Str, Str],
            optional: 1,
            variadic: true,
            ret: V,
        },
        "vector" => sig(&[S], 0, V),
        "scalar" => sig(&[V], 0, S),
        "time" | "pi" => sig(&[], 0, S),
        "min_of" | "max_of" => sig(&[S, S], 0, S),
        "start" | "end" | "range" | "step" => sig(&[], 0, S),
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => sig(&[V], 1, V),
        "info" => sig(&[V, V], 1, V),
        // Sextant's cross-selector functions (docs/query-language.md).
        "bytes_over_time" | "bytes_rate" | "error_ratio" => sig(&[M], 0, V),
        "trace" => sig(&[Str], 0, ValueType::Traces),
        "traces" => sig(&[ValueType::Spans], 0, ValueType::Traces),
        // Takes an instant vector or a range selector (see the parser).
        "exemplar_traces" => sig(&[V], 0, ValueType::Traces),
        _ => return None,
    })
}

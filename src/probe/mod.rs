//! Contract probes: requests derived from an assignment's feature schema that a service must
//! reject (a number sent as a string, a bound just outside, `NaN`, a broken envelope...) or
//! must answer (each bound exactly, `3.0` for an integer, an unseen category...).
//!
//! Hand-written bad-input checks cover what their author thought of; these cover every feature
//! the schema declares, per class of defect, so a service that validates one feature carefully
//! and coerces the others loses points on exactly what it coerces.
//!
//! Bodies are raw bytes, not `serde_json::Value`s: serde_json cannot write `NaN`, `Infinity` or
//! invalid UTF-8, and those are among the probes.
//!
//! - `generate`: the cases of a schema and the seeded sample of them a run sends;
//! - `contract`: the contract's value rules, written independently of the generator, by which
//!   its tests (and the phase tests' strict service) judge a request.
//!
//! Pure: no I/O, no HTTP. The phase that sends the cases is `phases::probes`.

pub mod contract;
pub mod generate;

pub use generate::{generate, sample, Envelope};

/// A class of probe: one kind of defect (or of valid edge case), scored on its own. A bad
/// instance is sent alone and once more inside an otherwise valid batch (the whole request must
/// be refused); both cases count in the class of the defect, so a service that coerces one kind
/// of value loses points in exactly that class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    // Invalid values of one feature.
    NumberAsString,
    FractionalInteger,
    BoolAsNumber,
    BoolAsString,
    NumberAsBool,
    StringForNumber,
    NonStringCategory,
    EmptyCategory,
    OverlongCategory,
    NullInRequired,
    MissingKey,
    MissingNullableKey,
    UnknownKey,
    BelowMin,
    AboveMax,
    NanLiteral,
    InfinityLiteral,
    // Invalid requests.
    NotAnObject,
    InstancesMissing,
    InstancesNotArray,
    EmptyBatch,
    BatchOverLimit,
    InstanceNotObject,
    UnknownTopLevelKey,
    InvalidUtf8,
    BodyOverCap,
    // Invalid tensors (the tensor encoding only).
    WrongDatatype,
    ShapeMismatch,
    // Valid edge cases: must be answered.
    BoundExact,
    IntegerAsFloat,
    UnseenCategory,
    AllNullableNull,
    LargestBatch,
}

impl Class {
    /// Every class, in the order checks are listed.
    pub const ALL: [Class; 33] = [
        Class::NumberAsString,
        Class::FractionalInteger,
        Class::BoolAsNumber,
        Class::BoolAsString,
        Class::NumberAsBool,
        Class::StringForNumber,
        Class::NonStringCategory,
        Class::EmptyCategory,
        Class::OverlongCategory,
        Class::NullInRequired,
        Class::MissingKey,
        Class::MissingNullableKey,
        Class::UnknownKey,
        Class::BelowMin,
        Class::AboveMax,
        Class::NanLiteral,
        Class::InfinityLiteral,
        Class::NotAnObject,
        Class::InstancesMissing,
        Class::InstancesNotArray,
        Class::EmptyBatch,
        Class::BatchOverLimit,
        Class::InstanceNotObject,
        Class::UnknownTopLevelKey,
        Class::InvalidUtf8,
        Class::BodyOverCap,
        Class::WrongDatatype,
        Class::ShapeMismatch,
        Class::BoundExact,
        Class::IntegerAsFloat,
        Class::UnseenCategory,
        Class::AllNullableNull,
        Class::LargestBatch,
    ];

    /// Its stable name: in grader files (`[probes.class_points]`) and reports.
    pub fn name(self) -> &'static str {
        self.words().0
    }

    /// In words, for check names.
    pub fn describe(self) -> &'static str {
        self.words().1
    }

    fn words(self) -> (&'static str, &'static str) {
        use Class::*;
        match self {
            NumberAsString => ("number_as_string", "number as string"),
            FractionalInteger => ("fractional_integer", "fractional value for an integer"),
            BoolAsNumber => ("bool_as_number", "boolean as number"),
            BoolAsString => ("bool_as_string", "boolean as string"),
            NumberAsBool => ("number_as_bool", "number as boolean"),
            StringForNumber => ("string_for_number", "text for a number"),
            NonStringCategory => ("non_string_category", "category that is not a string"),
            EmptyCategory => ("empty_category", "empty category"),
            OverlongCategory => ("overlong_category", "over-long category"),
            NullInRequired => ("null_in_required", "null in a required feature"),
            MissingKey => ("missing_key", "missing feature"),
            MissingNullableKey => ("missing_nullable_key", "missing nullable feature"),
            UnknownKey => ("unknown_key", "unknown feature"),
            BelowMin => ("below_min", "value just below its minimum"),
            AboveMax => ("above_max", "value just above its maximum"),
            NanLiteral => ("nan_literal", "NaN literal"),
            InfinityLiteral => ("infinity_literal", "Infinity literal"),
            NotAnObject => ("not_an_object", "body that is not an object"),
            InstancesMissing => ("instances_missing", "instances missing"),
            InstancesNotArray => ("instances_not_array", "instances not an array"),
            EmptyBatch => ("empty_batch", "empty batch"),
            BatchOverLimit => ("batch_over_limit", "batch over the limit"),
            InstanceNotObject => ("instance_not_object", "instance that is not an object"),
            UnknownTopLevelKey => ("unknown_top_level_key", "unknown top-level key"),
            InvalidUtf8 => ("invalid_utf8", "invalid UTF-8"),
            BodyOverCap => ("body_over_cap", "body over the size cap"),
            WrongDatatype => ("wrong_datatype", "tensor of the wrong datatype"),
            ShapeMismatch => (
                "shape_mismatch",
                "tensor shape that does not match its data",
            ),
            BoundExact => ("bound_exact", "each bound exactly"),
            IntegerAsFloat => ("integer_as_float", "integer written as 3.0"),
            UnseenCategory => ("unseen_category", "unseen category"),
            AllNullableNull => ("all_nullable_null", "every nullable feature null"),
            LargestBatch => ("largest_batch", "largest batch"),
        }
    }

    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether it exists only in the tensor encoding (`[prediction.tensors]`).
    pub fn tensors_only(self) -> bool {
        matches!(self, Class::WrongDatatype | Class::ShapeMismatch)
    }

    /// Whether its cases are valid requests (to be answered) rather than invalid ones.
    pub fn is_valid_input(self) -> bool {
        matches!(
            self,
            Class::BoundExact
                | Class::IntegerAsFloat
                | Class::UnseenCategory
                | Class::AllNullableNull
                | Class::LargestBatch
        )
    }

    /// The name of its check in a report.
    pub fn check_name(self) -> String {
        if self.is_valid_input() {
            format!("accepts valid edge cases: {}", self.describe())
        } else {
            format!("rejects invalid input: {}", self.describe())
        }
    }
}

/// What the service must do with a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A client error (a status of the grader's set) with a JSON object body.
    Rejected,
    /// `200` with one prediction per instance.
    Accepted { instances: usize },
}

/// One request to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub class: Class,
    /// The feature it targets (`None`: the request as a whole).
    pub feature: Option<String>,
    /// The exact body bytes.
    pub body: Vec<u8>,
    pub expected: Expected,
}

//! Binding the Kubernetes variables for evaluation.

use std::fmt;
use std::sync::Arc;

use kube_cel::cel::objects::Opaque;
use kube_cel::cel::{Context, Value};

use crate::convert::{self, Converter};
use crate::error::InputError;
use crate::limits::InputLimits;
use crate::runtime::{ROOT, VARS_KEY};
use crate::variables::{VarState, VariableSet};

/// Something a [`Program`](crate::Program) can be evaluated against:
/// [`Bindings`] or an [`Activation`]. Sealed.
pub trait Scope: private::Sealed {}

pub(crate) mod private {
    use kube_cel::cel::Context;

    pub trait Sealed {
        fn context(&self) -> &Context<'_>;
        fn variable_set_id(&self) -> Option<u64>;
    }
}

pub(crate) use private::Sealed;

/// One input document for a [`BindingsBuilder`].
pub enum Input<'a> {
    /// A parsed JSON document (converted, with the input limits enforced).
    Json(&'a serde_json::Value),
    /// Raw JSON bytes (size-checked before parsing, then converted).
    JsonBytes(&'a [u8]),
    /// An already converted CEL value (trusted: no limits are applied).
    Value(Value),
}

impl<'a> From<&'a serde_json::Value> for Input<'a> {
    fn from(v: &'a serde_json::Value) -> Self {
        Input::Json(v)
    }
}

impl From<Value> for Input<'_> {
    fn from(v: Value) -> Self {
        Input::Value(v)
    }
}

impl fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Json(_) => f.write_str("Input::Json(..)"),
            Input::JsonBytes(b) => write!(f, "Input::JsonBytes({} bytes)", b.len()),
            Input::Value(_) => f.write_str("Input::Value(..)"),
        }
    }
}

/// The request-level variables — `object`, `oldObject`, `request`, `params`,
/// `namespaceObject` — converted to CEL **once** and reusable by any number of
/// programs and policies (and threads: `Bindings` is `Send + Sync`).
///
/// Unset variables are `null`, as in Kubernetes (`oldObject` on CREATE,
/// `object` on DELETE, `params` without a paramKind, `namespaceObject` for
/// cluster-scoped resources).
pub struct Bindings {
    ctx: Context<'static>,
}

impl fmt::Debug for Bindings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bindings").finish_non_exhaustive()
    }
}

/// Builder for [`Bindings`].
#[derive(Debug, Default)]
pub struct BindingsBuilder<'a> {
    object: Option<Input<'a>>,
    old_object: Option<Input<'a>>,
    request: Option<Input<'a>>,
    params: Option<Input<'a>>,
    namespace_object: Option<Input<'a>>,
    limits: InputLimits,
}

impl<'a> BindingsBuilder<'a> {
    /// `object`: the object from the incoming request (null for DELETE).
    pub fn object(mut self, input: impl Into<Input<'a>>) -> Self {
        self.object = Some(input.into());
        self
    }

    /// `oldObject`: the existing object (null for CREATE). `None` binds null.
    pub fn old_object(mut self, input: Option<impl Into<Input<'a>>>) -> Self {
        self.old_object = input.map(Into::into);
        self
    }

    /// `request`: the admission request attributes (an `admission.k8s.io/v1`
    /// `AdmissionRequest` as JSON). Its `object` and `oldObject` fields are
    /// dropped when converting JSON — they are bound as separate variables.
    pub fn request(mut self, input: impl Into<Input<'a>>) -> Self {
        self.request = Some(input.into());
        self
    }

    /// `params`: the parameter resource of the binding.
    pub fn params(mut self, input: impl Into<Input<'a>>) -> Self {
        self.params = Some(input.into());
        self
    }

    /// `namespaceObject`: the namespace of a namespaced object.
    pub fn namespace_object(mut self, input: impl Into<Input<'a>>) -> Self {
        self.namespace_object = Some(input.into());
        self
    }

    /// Input size and depth limits (default: [`InputLimits::default`]).
    pub fn input_limits(mut self, limits: InputLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Converts the inputs and builds the bindings.
    pub fn build(self) -> Result<Bindings, InputError> {
        let limits = self.limits;
        let convert = |input: Option<Input<'a>>,
                       name: &'static str,
                       skip: &'static [&'static str]| {
            match input {
                None => Ok(Value::Null),
                Some(Input::Value(v)) => Ok(v),
                Some(Input::Json(j)) => Converter::new(&limits, name).skip_top_level(skip).run(j),
                Some(Input::JsonBytes(b)) => convert::json_slice_to_value(b, &limits, name),
            }
        };
        let object = convert(self.object, "object", &[])?;
        let old_object = convert(self.old_object, "oldObject", &[])?;
        let request = convert(self.request, "request", &["object", "oldObject"])?;
        let params = convert(self.params, "params", &[])?;
        let namespace_object = convert(self.namespace_object, "namespaceObject", &[])?;
        let mut ctx = ROOT.new_inner_scope();
        ctx.add_variable_from_value("object", object);
        ctx.add_variable_from_value("oldObject", old_object);
        ctx.add_variable_from_value("request", request);
        ctx.add_variable_from_value("params", params);
        ctx.add_variable_from_value("namespaceObject", namespace_object);
        Ok(Bindings { ctx })
    }
}

impl Bindings {
    /// Starts a builder.
    pub fn builder<'a>() -> BindingsBuilder<'a> {
        BindingsBuilder::default()
    }

    /// Bindings with every variable null.
    pub fn empty() -> Bindings {
        Bindings {
            ctx: {
                let mut ctx = ROOT.new_inner_scope();
                for name in crate::KUBERNETES_VARIABLES {
                    ctx.add_variable_from_value(*name, Value::Null);
                }
                ctx
            },
        }
    }

    /// Adds a policy's variables: the returned [`Activation`] evaluates each
    /// `variables.<name>` lazily, at most once, and shares the value between
    /// all programs evaluated against it (as Kubernetes does per policy and
    /// request). Cheap: the bound documents are not copied.
    pub fn with_variables<'b>(&'b self, variables: &VariableSet) -> Activation<'b> {
        let mut ctx = self.ctx.new_inner_scope();
        let state: Arc<dyn Opaque> = Arc::new(VarState::new(variables));
        ctx.add_variable_from_value(VARS_KEY, Value::Opaque(state));
        Activation {
            ctx,
            set_id: variables.inner.id,
        }
    }
}

impl Sealed for Bindings {
    fn context(&self) -> &Context<'_> {
        &self.ctx
    }
    fn variable_set_id(&self) -> Option<u64> {
        None
    }
}
impl Scope for Bindings {}

/// [`Bindings`] plus one policy's [`VariableSet`] and the memo of its values.
/// `Send + Sync`; create one per (request, policy).
pub struct Activation<'b> {
    ctx: Context<'b>,
    set_id: u64,
}

impl fmt::Debug for Activation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Activation").finish_non_exhaustive()
    }
}

impl Sealed for Activation<'_> {
    fn context(&self) -> &Context<'_> {
        &self.ctx
    }
    fn variable_set_id(&self) -> Option<u64> {
        Some(self.set_id)
    }
}
impl Scope for Activation<'_> {}

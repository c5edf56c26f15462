//! Code generation for NMODL mechanisms: the kernel IR, its validator, a
//! reference interpreter and a cranelift JIT into the `runtime::abi` kernel
//! ABI. This documentation is the specification of the IR; the interpreter
//! ([`interp`]) implements it as plainly as possible and is the oracle the JIT
//! ([`jit`]) is tested against, bit for bit.
//!
//! # Pipeline
//!
//! front-end model → (lowering, not here yet) → [`ir::Module`] →
//! [`valid::validate`] once → [`valid::ValidModule`] → [`interp`] or
//! [`jit::Compiler::compile`] → [`jit::JitModule`] (native `NrnKernelFn` /
//! `NrnNetReceiveFn` pointers, and an `NrnKernels` table).
//!
//! # Module
//!
//! A [`ir::Module`] holds one mechanism: its storage [`ir::Layout`] (RANGE
//! fields, GLOBALs, ions and POINTERs, in the order of the `NrnMechanism`
//! metadata the runtime allocates from), its FUNCTIONs and PROCEDUREs
//! ([`ir::Function`], in an arena) and at most one [`ir::Kernel`] per ABI
//! [`ir::Phase`]. Everything is addressed by typed [`ir::Handle`]s into
//! [`ir::Arena`]s.
//!
//! - A field `f` with `array_len = N` occupies N consecutive columns of
//!   `NrnMechPack::fields` starting at [`valid::ValidModule::field_column`]; a
//!   global likewise occupies consecutive slots of `NrnMechPack::globals`.
//! - Ions are in `NrnMechPack::ions` order; the instance's ion row is
//!   `NrnIonPack::index[instance]`.
//! - POINTER `p` of instance `i` is `NrnMechPack::pointers[p][i]`.
//!
//! # Kernels and their shape
//!
//! A kernel's phase fixes its shape ([`ir::Phase::shape`]):
//!
//! - [`ir::Shape::PerInstance`] (init, cur, state, table_check, BEFORE/AFTER
//!   blocks, constructor, destructor): an `NrnKernelFn`; the body runs once per
//!   instance, `for i in 0..count`, in order, with fresh locals each time.
//! - [`ir::Shape::Event`] (net_receive, net_receive_init): an
//!   `NrnNetReceiveFn`; the body runs once for the given instance, with the
//!   weight vector ([`ir::Place::Weight`]) and `flag` ([`ir::EnvVar::Flag`]).
//! - [`ir::Shape::Once`] (no phase uses it today): an `NrnKernelFn`; the body runs once,
//!   with no current instance: it may use globals, `t`, `dt`, `celsius` and
//!   functions that do not touch instance data (checked transitively).
//!
//! # Bodies, values and evaluation
//!
//! A [`ir::Body`] has locals, an expression arena and a statement block. There
//! are two value types, `f64` and `bool` ([`ir::Type`]). Every local starts at
//! `0.0` / `false` each time its body starts (each instance, each call).
//!
//! Expressions ([`ir::Expression`]) are trees in an arena: a child must have a
//! smaller index than its parent. An expression is evaluated when the
//! statement (or parent) using it runs, operands left to right; a handle used
//! twice is evaluated twice. `&&`, `||` and `select` short-circuit (only the
//! chosen operand is evaluated), as in C. Arithmetic is IEEE-754 binary64
//! without contraction (no fused multiply-add). `Ne` is true when either side
//! is NaN, the other comparisons false. `f64 → bool` is `x != 0.0` (NaN is
//! true); `bool → f64` is 1.0 / 0.0. `^` ([`ir::BinaryOp::Pow`]) and every
//! [`ir::MathFn`] call the `extern "C"` functions in [`math`], whichever back
//! end runs, so results are identical; the one exception is `exp`, which the
//! JIT and FMA-compiled AOT units compute inline by the C library's own
//! algorithm wherever that matches the C library bit for bit
//! ([`math::exp_table_driven`]), so results are still identical.
//!
//! Loads and stores go through [`ir::Place`]: a field element of the current
//! instance, a global, the node's `v`/`area`/`diam` (via `node_index`, load
//! only), an ion column (via the ion index), a POINTER target, or a weight.
//! A place with an index (array fields and globals) evaluates its f64 index
//! and truncates it toward zero like C's `(int)`; unless `0 <= trunc(k) < N`
//! (NaN fails) the kernel fails with `STATUS_MECHANISM_ERROR`. An unset (null)
//! POINTER fails with `STATUS_POINTER_UNSET`. A weight index `>= n_weights`
//! fails with `STATUS_MECHANISM_ERROR`. For a store, the place (its index and
//! these checks) is resolved before the value is evaluated.
//!
//! # Statements
//!
//! [`ir::Statement`]: assign a local; store to a place; accumulate
//! (`rhs[node] -= x`, `d[node] += x`, ion `cur`/`dcurdv += x`, with an explicit
//! [`ir::AccumOp`]; the value is evaluated first); `if`/`else`; `while` with an
//! iteration cap; NMODL `FROM`/`TO`/`BY` loops ([`ir::Statement::ForRange`]:
//! start evaluated and assigned, then end evaluated once; `var <= end`
//! (`>=` for negative steps) is tested before each iteration; `var += step`
//! after the body); procedure calls; the host calls `net_send` (kernels only,
//! passing the event's weight vector in event kernels and null otherwise),
//! `net_event`, `net_move`, `set_seed` and the expression `random_uniform`
//! (through `NrnHostApi`); `return`; and `error(status)`.
//!
//! A loop whose body would run more than `max_iterations` times fails with
//! `STATUS_MECHANISM_ERROR` instead of hanging (exactly `max_iterations` runs
//! of the body happen first).
//!
//! `return` ends the current body normally: a function returns the value of
//! its result local; a per-instance kernel continues with the next instance;
//! the other kernels return `STATUS_OK`. `error(status)` aborts the whole
//! kernel call with `status`, through any number of function calls.
//!
//! # Functions
//!
//! FUNCTIONs and PROCEDUREs are called, never inlined. Arguments are f64, by
//! value, bound to the parameter locals; a FUNCTION returns its `result`
//! local's value. Functions run with the caller's current instance, so they
//! may read and write fields of that instance, globals, ions and POINTERs, but
//! not weights, `flag` or `net_send`. Recursion is rejected by the validator.
//! In the JIT a function is a native
//! `fn(pack, instance: u32, result: *mut f64, args: f64…) -> i32 status`.
//!
//! # Errors and statuses
//!
//! Every kernel returns `runtime::abi::STATUS_OK` or an error status. On an
//! error the kernel stops at once (later instances do not run, earlier ones
//! keep their effects) and sets `NrnMechPack::error_instance` to the failing
//! instance (`u32::MAX` for instance-less kernels).
//!
//! # Validation
//!
//! [`valid::validate`] checks handles (including expression order), field /
//! global / ion / pointer references against the layout, index presence for
//! arrays, types, arities, storability, phase rules (weights and flag only in
//! event kernels, no instance data in table_check, net_send not in
//! functions), recursion, duplicate phases, FROM steps and error statuses. Back
//! ends trust a [`valid::ValidModule`] and do no further checks on the IR.
//!
//! # Runtime data
//!
//! The interpreter runs over safe vectors ([`interp::MechData`]), which
//! [`interp::MechData::check`] verifies against the layout. The JIT's test
//! runners ([`jit::run_kernel`], [`jit::run_event`]) build a real
//! `NrnMechPack` pointing into the same struct and call the native kernel.

pub mod interp;
pub mod ir;
#[cfg(feature = "jit")]
pub mod jit;
#[cfg(feature = "jit")]
pub mod load;
pub mod lower;
pub mod math;
pub mod rust;
pub mod valid;

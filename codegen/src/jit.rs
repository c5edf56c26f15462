//! The cranelift JIT: compiles a [`ValidModule`] into native kernels with the
//! `runtime::abi` signatures. This is the only module of the crate with
//! `unsafe`; every block says why it is sound.
//!
//! Every kernel reads the instance data through the `NrnMechPack` it is given,
//! at offsets taken with `core::mem::offset_of!` from the ABI structs. Math
//! built-ins are calls to the same `extern "C"` functions the interpreter uses
//! ([`crate::math`]), so both back ends agree bit for bit.
//!
//! Calling convention of helper functions (FUNCTION / PROCEDURE): native
//! `fn(pack: *mut NrnMechPack, instance: u32, result: *mut f64, args: f64…) -> i32`,
//! returning a status; callers propagate a nonzero status out of the kernel.

use crate::interp::{padded, DataError, HostCall, MechData, RecordingHost};
use crate::ir::*;
use crate::math;
use crate::valid::ValidModule;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, AbiParam, Block as ClBlock, FuncRef, InstBuilder, MemFlagsData, SigRef, Signature,
    StackSlot, StackSlotData, StackSlotKind, UserFuncName, Value,
};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module as _};
use runtime::abi::{
    NrnHostApi, NrnIonPack, NrnKernelFn, NrnKernels, NrnMechPack, NrnNetReceiveFn,
    STATUS_MECHANISM_ERROR, STATUS_OK, STATUS_POINTER_UNSET,
};
use std::collections::{HashMap, HashSet};
use std::ffi::c_void;
use std::mem::{offset_of, size_of};

/// Why compilation failed (a cranelift error; validated IR should not cause one).
#[derive(Debug)]
pub struct JitError(pub String);

impl std::fmt::Display for JitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JIT compilation failed: {}", self.0)
    }
}

impl std::error::Error for JitError {}

fn jit_err(e: impl std::fmt::Display) -> JitError {
    JitError(e.to_string())
}

/// Optimisation level of the generated code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptLevel {
    /// No optimisation and cranelift's single-pass register allocator: the
    /// fastest compilation, slower code (more spills).
    QuickCompile,
    /// No optimisation, backtracking register allocator.
    None,
    /// Cranelift's `speed` level.
    Speed,
}

/// A reusable compiler: holds the target ISA and the cranelift contexts, so
/// compiling many modules does not rebuild them.
pub struct Compiler {
    isa: OwnedTargetIsa,
    ctx: Option<Context>,
    fctx: FunctionBuilderContext,
    /// Whether `exp` is computed inline ([`Lower::inline_exp`]): the
    /// processor has FMA and the table-driven `exp` matches the C library.
    inline_exp: bool,
}

impl Compiler {
    /// A compiler for the host machine. The cranelift IR verifier runs in
    /// debug builds only (validated IR should always produce valid CLIF).
    pub fn new(opt: OptLevel) -> Result<Compiler, JitError> {
        let verifier = if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        };
        Compiler::with_settings(opt, &[("enable_verifier", verifier)])
    }

    /// A compiler with extra cranelift settings (name, value), e.g.
    /// `("regalloc_algorithm", "single_pass")`, applied after the defaults.
    pub fn with_settings(opt: OptLevel, extra: &[(&str, &str)]) -> Result<Compiler, JitError> {
        let mut flags = settings::builder();
        flags
            .set("use_colocated_libcalls", "false")
            .map_err(jit_err)?;
        flags.set("is_pic", "false").map_err(jit_err)?;
        flags
            .set(
                "opt_level",
                match opt {
                    OptLevel::QuickCompile | OptLevel::None => "none",
                    OptLevel::Speed => "speed",
                },
            )
            .map_err(jit_err)?;
        if opt == OptLevel::QuickCompile {
            flags
                .set("regalloc_algorithm", "single_pass")
                .map_err(jit_err)?;
        }
        for (name, value) in extra {
            flags.set(name, value).map_err(jit_err)?;
        }
        let isa = cranelift_native::builder()
            .map_err(jit_err)?
            .finish(settings::Flags::new(flags))
            .map_err(jit_err)?;
        let has_fma = isa
            .isa_flags()
            .iter()
            .any(|f| f.name == "has_fma" && f.as_bool() == Some(true));
        Ok(Compiler {
            isa,
            ctx: None,
            fctx: FunctionBuilderContext::new(),
            inline_exp: has_fma && math::table_exp_matches_libm(),
        })
    }

    /// Compiles every kernel and function of `vm` into a new [`JitModule`].
    pub fn compile(&mut self, vm: &ValidModule) -> Result<JitModule, JitError> {
        let mut builder = JITBuilder::with_isa(self.isa.clone(), default_libcall_names());
        for fun in MathFn::ALL {
            builder.symbol(math::symbol_name(fun), math::implementation(fun).address());
        }
        let mut jm = JITModule::new(builder);
        let result = self.compile_into(&mut jm, vm);
        match result {
            Ok(entries) => Ok(JitModule {
                module: Some(jm),
                entries,
            }),
            Err(e) => {
                // SAFETY: no function pointer from `jm` was handed out.
                unsafe { jm.free_memory() };
                Err(e)
            }
        }
    }

    fn compile_into(
        &mut self,
        jm: &mut JITModule,
        vm: &ValidModule,
    ) -> Result<Vec<(Phase, *const u8)>, JitError> {
        let module = vm.module();
        let call_conv = jm.isa().default_call_conv();
        let mut ctx = self.ctx.take().unwrap_or_else(|| jm.make_context());

        // Declare everything first so calls can refer to any function.
        let mut math_ids = HashMap::new();
        for fun in MathFn::ALL {
            let mut sig = Signature::new(call_conv);
            for _ in 0..fun.arity() {
                sig.params.push(AbiParam::new(types::F64));
            }
            sig.returns.push(AbiParam::new(types::F64));
            let id = jm
                .declare_function(&math::symbol_name(fun), Linkage::Import, &sig)
                .map_err(jit_err)?;
            math_ids.insert(fun, id);
        }
        let mut fn_ids = Vec::new();
        for (h, f) in module.functions.iter() {
            let sig = function_signature(call_conv, f.params.len());
            let id = jm
                .declare_function(&format!("fn{}_{}", h.index(), f.name), Linkage::Local, &sig)
                .map_err(jit_err)?;
            fn_ids.push(id);
        }
        let mut kernel_ids = Vec::new();
        for k in &module.kernels {
            let sig = kernel_signature(call_conv, k.phase.shape());
            let id = jm
                .declare_function(&format!("kernel_{:?}", k.phase), Linkage::Local, &sig)
                .map_err(jit_err)?;
            kernel_ids.push(id);
        }
        let ids = Ids {
            math: math_ids,
            functions: fn_ids.clone(),
            inline_exp: self.inline_exp,
            hot_functions: hot_functions(module),
        };

        let mut result = Ok(());
        for (h, f) in module.functions.iter() {
            let hot = ids.hot_functions.contains(&h);
            result = self.define(
                jm,
                &mut ctx,
                vm,
                &ids,
                fn_ids[h.index()],
                Unit::Function(f),
                hot,
            );
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            for (k, kernel) in module.kernels.iter().enumerate() {
                let hot = kernel.phase.every_step();
                result = self.define(
                    jm,
                    &mut ctx,
                    vm,
                    &ids,
                    kernel_ids[k],
                    Unit::Kernel(kernel),
                    hot,
                );
                if result.is_err() {
                    break;
                }
            }
        }
        self.ctx = Some(ctx);
        result?;
        jm.finalize_definitions().map_err(jit_err)?;
        Ok(module
            .kernels
            .iter()
            .zip(&kernel_ids)
            .map(|(k, id)| (k.phase, jm.get_finalized_function(*id)))
            .collect())
    }

    fn define(
        &mut self,
        jm: &mut JITModule,
        ctx: &mut Context,
        vm: &ValidModule,
        ids: &Ids,
        id: FuncId,
        unit: Unit,
        hot: bool,
    ) -> Result<(), JitError> {
        jm.clear_context(ctx);
        let call_conv = jm.isa().default_call_conv();
        ctx.func.signature = match unit {
            Unit::Function(f) => function_signature(call_conv, f.params.len()),
            Unit::Kernel(k) => kernel_signature(call_conv, k.phase.shape()),
        };
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        {
            let b = FunctionBuilder::new(&mut ctx.func, &mut self.fctx);
            let lower = Lower::new(b, jm, vm, ids, unit, hot);
            lower.run();
        }
        // `NRNRS_JIT_DUMP=1` prints each function's machine code (a
        // development aid for reading what the generated kernels do).
        let dump = std::env::var_os("NRNRS_JIT_DUMP").is_some();
        ctx.set_disasm(dump);
        jm.define_function(id, ctx)
            .map_err(|e| JitError(format!("{e:?}")))?;
        if let Some(code) = ctx.compiled_code().filter(|_| dump) {
            eprintln!(
                "; {} {}\n{}",
                vm.module().name,
                unit.name(),
                code.vcode.as_deref().unwrap_or("")
            );
        }
        Ok(())
    }
}

/// The functions called, directly or through other functions, by the
/// kernels that run at every step ([`Phase::every_step`]).
fn hot_functions(module: &Module) -> HashSet<Handle<Function>> {
    let mut hot = HashSet::new();
    let mut todo: Vec<Handle<Function>> = module
        .kernels
        .iter()
        .filter(|k| k.phase.every_step())
        .flat_map(|k| k.body.callees())
        .collect();
    while let Some(f) = todo.pop() {
        if hot.insert(f) {
            todo.extend(module.functions[f].body.callees());
        }
    }
    hot
}

fn function_signature(call_conv: cranelift_codegen::isa::CallConv, n: usize) -> Signature {
    let mut sig = Signature::new(call_conv);
    sig.params.push(AbiParam::new(types::I64)); // pack
    sig.params.push(AbiParam::new(types::I32)); // instance
    sig.params.push(AbiParam::new(types::I64)); // result pointer
    for _ in 0..n {
        sig.params.push(AbiParam::new(types::F64));
    }
    sig.returns.push(AbiParam::new(types::I32));
    sig
}

fn kernel_signature(call_conv: cranelift_codegen::isa::CallConv, shape: Shape) -> Signature {
    let mut sig = Signature::new(call_conv);
    sig.params.push(AbiParam::new(types::I64)); // pack
    if shape == Shape::Event {
        sig.params.push(AbiParam::new(types::I32)); // instance
        sig.params.push(AbiParam::new(types::I64)); // weights
        sig.params.push(AbiParam::new(types::I32)); // n_weights
        sig.params.push(AbiParam::new(types::F64)); // flag
    }
    sig.returns.push(AbiParam::new(types::I32));
    sig
}

struct Ids {
    math: HashMap<MathFn, FuncId>,
    functions: Vec<FuncId>,
    /// Whether `exp` is computed inline ([`Lower::inline_exp`]).
    inline_exp: bool,
    /// The functions that kernels run at every step call, directly or not.
    hot_functions: HashSet<Handle<Function>>,
}

#[derive(Clone, Copy)]
enum Unit<'a> {
    Function(&'a Function),
    Kernel(&'a Kernel),
}

impl Unit<'_> {
    fn name(&self) -> String {
        match self {
            Unit::Function(f) => f.name.to_string(),
            Unit::Kernel(k) => format!("{:?}", k.phase),
        }
    }
}

/// Compiled kernels. Dropping it frees the code: the function pointers it
/// handed out must not be called afterwards.
pub struct JitModule {
    module: Option<JITModule>,
    entries: Vec<(Phase, *const u8)>,
}

// SAFETY: after `compile` returns, the code and data behind `entries` are
// finalized and never written again; the pointers are plain addresses of
// immutable machine code, so sharing or moving the owner between threads is
// sound. The code is freed only in `Drop`, which needs exclusive ownership.
unsafe impl Send for JitModule {}
// SAFETY: see `Send` above; `&JitModule` only reads `entries`.
unsafe impl Sync for JitModule {}

impl Drop for JitModule {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the code is freed only when the owner goes away; the
            // function pointers are documented to die with this struct.
            unsafe { m.free_memory() };
        }
    }
}

impl JitModule {
    fn entry(&self, phase: Phase) -> Option<*const u8> {
        self.entries
            .iter()
            .find(|(p, _)| *p == phase)
            .map(|(_, f)| *f)
    }

    /// The kernel of a per-instance or instance-less `phase`, valid while
    /// `self` lives.
    pub fn kernel(&self, phase: Phase) -> Option<NrnKernelFn> {
        if phase.shape() == Shape::Event {
            return None;
        }
        // SAFETY: the entry was compiled with `kernel_signature` for a
        // non-event shape, i.e. `(i64 pack) -> i32` in the host's C calling
        // convention, which is exactly `NrnKernelFn`.
        self.entry(phase)
            .map(|f| unsafe { std::mem::transmute::<*const u8, NrnKernelFn>(f) })
    }

    /// The kernel of an event `phase` (NET_RECEIVE or its INITIAL), valid
    /// while `self` lives.
    pub fn event_kernel(&self, phase: Phase) -> Option<NrnNetReceiveFn> {
        if phase.shape() != Shape::Event {
            return None;
        }
        // SAFETY: compiled with the event `kernel_signature`
        // `(i64, i32, i64, i32, f64) -> i32`, which is `NrnNetReceiveFn`.
        self.entry(phase)
            .map(|f| unsafe { std::mem::transmute::<*const u8, NrnNetReceiveFn>(f) })
    }

    /// The ABI kernel table (absent phases are `None`), valid while `self` lives.
    pub fn kernels(&self) -> NrnKernels {
        NrnKernels {
            init: self.kernel(Phase::Init),
            cur: self.kernel(Phase::Cur),
            state: self.kernel(Phase::State),
            table_check: self.kernel(Phase::TableCheck),
            net_receive: self.event_kernel(Phase::NetReceive),
            net_receive_init: self.event_kernel(Phase::NetReceiveInit),
            before_initial: self.kernel(Phase::BeforeInitial),
            after_initial: self.kernel(Phase::AfterInitial),
            before_breakpoint: self.kernel(Phase::BeforeBreakpoint),
            after_solve: self.kernel(Phase::AfterSolve),
            before_step: self.kernel(Phase::BeforeStep),
            constructor: self.kernel(Phase::Constructor),
            destructor: self.kernel(Phase::Destructor),
        }
    }
}

/// Compiles `vm` with a fresh [`Compiler`] at [`OptLevel::Speed`].
pub fn compile(vm: &ValidModule) -> Result<JitModule, JitError> {
    Compiler::new(OptLevel::Speed)?.compile(vm)
}

// ---------------------------------------------------------------------------
// Lowering of one function or kernel.

const TRUSTED: MemFlagsData = MemFlagsData::trusted();

struct Lower<'a, 'b> {
    b: FunctionBuilder<'b>,
    jm: &'a mut JITModule,
    vm: &'a ValidModule,
    ids: &'a Ids,
    body: &'a Body,
    shape: Option<Shape>,
    locals: Vec<Variable>,
    instance: Variable,
    status: Variable,
    pack: Value,
    weights: Option<(Value, Value)>,
    flag: Option<Value>,
    result_ptr: Option<Value>,
    result_local: Option<Handle<Local>>,
    error_block: ClBlock,
    /// Where `Statement::Return` jumps.
    return_block: ClBlock,
    ret_slot: Option<StackSlot>,
    params: Vec<Handle<Local>>,
    math_refs: HashMap<MathFn, FuncRef>,
    fn_refs: HashMap<usize, FuncRef>,
    host_sigs: HashMap<&'static str, SigRef>,
    /// `NrnMechPack` pointer fields, loaded once in the entry block.
    pack_ptrs: HashMap<usize, Value>,
    /// Field column pointers of scalar fields, loaded once in the entry block.
    columns: HashMap<usize, Value>,
    /// The current instance widened to i64.
    instance64: Variable,
    /// One stack slot per local array.
    arrays: Vec<StackSlot>,
    /// Whether speed matters more than compile time here: a kernel run at
    /// every step, or a function such a kernel calls; `exp` is inlined only
    /// here.
    hot: bool,
}

impl<'a, 'b> Lower<'a, 'b> {
    fn new(
        mut b: FunctionBuilder<'b>,
        jm: &'a mut JITModule,
        vm: &'a ValidModule,
        ids: &'a Ids,
        unit: Unit<'a>,
        hot: bool,
    ) -> Self {
        let (body, shape) = match unit {
            Unit::Function(f) => (&f.body, None),
            Unit::Kernel(k) => (&k.body, Some(k.phase.shape())),
        };
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry).to_vec();
        let instance = b.declare_var(types::I32);
        let status = b.declare_var(types::I32);
        let locals = body
            .locals
            .iter()
            .map(|(_, l)| {
                b.declare_var(match l.ty {
                    Type::F64 => types::F64,
                    Type::Bool => types::I8,
                })
            })
            .collect();
        let zero = b.ins().iconst(types::I32, 0);
        b.def_var(status, zero);
        let (mut weights, mut flag, mut result_ptr, mut result_local) = (None, None, None, None);
        let mut bound = Vec::new();
        match (unit, shape) {
            (Unit::Function(f), _) => {
                b.def_var(instance, params[1]);
                result_ptr = Some(params[2]);
                result_local = f.result;
                bound = f.params.clone();
            }
            (_, Some(Shape::Event)) => {
                b.def_var(instance, params[1]);
                weights = Some((params[2], params[3]));
                flag = Some(params[4]);
            }
            _ => {
                let none = b.ins().iconst(types::I32, i64::from(u32::MAX as i32));
                b.def_var(instance, none);
            }
        }
        // Hoist the pack's pointer fields and the used scalar columns into
        // the entry block: they do not change during a call.
        let mut pack_ptrs = HashMap::new();
        for offset in [
            offset_of!(NrnMechPack, fields),
            offset_of!(NrnMechPack, globals),
            offset_of!(NrnMechPack, node_index),
            offset_of!(NrnMechPack, ions),
        ] {
            let v = b.ins().load(types::I64, TRUSTED, params[0], offset as i32);
            pack_ptrs.insert(offset, v);
        }
        let mut columns = HashMap::new();
        let fields = pack_ptrs[&offset_of!(NrnMechPack, fields)];
        for column in scalar_columns(vm, body) {
            let v = b
                .ins()
                .load(types::I64, TRUSTED, fields, (column * 8) as i32);
            columns.insert(column, v);
        }
        let instance64 = b.declare_var(types::I64);
        let i = b.use_var(instance);
        let i64v = b.ins().uextend(types::I64, i);
        b.def_var(instance64, i64v);
        let arrays = body
            .arrays
            .iter()
            .map(|(_, a)| {
                b.create_sized_stack_slot(StackSlotData::new(
                    StackSlotKind::ExplicitSlot,
                    a.len * 8,
                    3,
                ))
            })
            .collect();
        let error_block = b.create_block();
        let return_block = b.create_block();
        Lower {
            b,
            jm,
            vm,
            ids,
            body,
            shape,
            locals,
            instance,
            status,
            pack: params[0],
            weights,
            flag,
            result_ptr,
            result_local,
            error_block,
            return_block,
            ret_slot: None,
            params: bound,
            math_refs: HashMap::new(),
            fn_refs: HashMap::new(),
            host_sigs: HashMap::new(),
            pack_ptrs,
            columns,
            instance64,
            arrays,
            hot,
        }
    }

    fn run(mut self) {
        if self.shape.is_some() {
            self.check_pack_shape();
        }
        match self.shape {
            Some(Shape::PerInstance) => {
                let count = self.b.ins().load(
                    types::I32,
                    TRUSTED,
                    self.pack,
                    offset_of!(NrnMechPack, count) as i32,
                );
                let zero = self.b.ins().iconst(types::I32, 0);
                self.b.def_var(self.instance, zero);
                let header = self.b.create_block();
                let body = self.b.create_block();
                let exit = self.b.create_block();
                self.b.ins().jump(header, &[]);
                self.b.switch_to_block(header);
                let i = self.b.use_var(self.instance);
                let more = self.b.ins().icmp(IntCC::UnsignedLessThan, i, count);
                self.b.ins().brif(more, body, &[], exit, &[]);
                self.b.switch_to_block(body);
                let i = self.b.use_var(self.instance);
                let i64v = self.b.ins().uextend(types::I64, i);
                self.b.def_var(self.instance64, i64v);
                self.zero_locals();
                let body = self.body;
                self.block(&body.block);
                self.b.ins().jump(self.return_block, &[]);
                // Next instance.
                self.b.switch_to_block(self.return_block);
                let i = self.b.use_var(self.instance);
                let next = self.b.ins().iadd_imm_s(i, 1);
                self.b.def_var(self.instance, next);
                self.b.ins().jump(header, &[]);
                self.b.switch_to_block(exit);
                let ok = self.b.ins().iconst(types::I32, i64::from(STATUS_OK));
                self.b.ins().return_(&[ok]);
            }
            Some(_) => {
                self.zero_locals();
                let body = self.body;
                self.block(&body.block);
                self.b.ins().jump(self.return_block, &[]);
                self.b.switch_to_block(self.return_block);
                let ok = self.b.ins().iconst(types::I32, i64::from(STATUS_OK));
                self.b.ins().return_(&[ok]);
            }
            None => {
                self.zero_locals();
                // Bind the parameters (block params 3.. of the entry block).
                let entry = self.b.func.layout.entry_block().expect("entry block");
                let params = self.b.block_params(entry).to_vec();
                for k in 0..self.params.len() {
                    let p = self.params[k];
                    self.b.def_var(self.locals[p.index()], params[3 + k]);
                }
                let body = self.body;
                self.block(&body.block);
                self.b.ins().jump(self.return_block, &[]);
                self.b.switch_to_block(self.return_block);
                if let (Some(r), Some(p)) = (self.result_local, self.result_ptr) {
                    let x = self.b.use_var(self.locals[r.index()]);
                    self.b.ins().store(TRUSTED, x, p, 0);
                }
                let ok = self.b.ins().iconst(types::I32, i64::from(STATUS_OK));
                self.b.ins().return_(&[ok]);
            }
        }
        // The shared error exit.
        self.b.switch_to_block(self.error_block);
        let status = self.b.use_var(self.status);
        if self.shape.is_some() {
            let i = self.b.use_var(self.instance);
            self.b.ins().store(
                TRUSTED,
                i,
                self.pack,
                offset_of!(NrnMechPack, error_instance) as i32,
            );
        }
        self.b.ins().return_(&[status]);
        self.b.seal_all_blocks();
        let config = self.jm.target_config();
        self.b.finalize(config);
    }

    /// Kernel entry check: the pack is at least as large as this ABI's
    /// `NrnMechPack` and its field, global, ion and POINTER counts equal the
    /// layout compiled against; otherwise the kernel returns
    /// `STATUS_MECHANISM_ERROR` (with `error_instance = u32::MAX`) before
    /// touching any instance data.
    fn check_pack_shape(&mut self) {
        let layout = &self.vm.module().layout;
        let expected = [
            (offset_of!(NrnMechPack, n_fields), layout.n_columns() as i64),
            (
                offset_of!(NrnMechPack, n_globals),
                layout.n_global_slots() as i64,
            ),
            (offset_of!(NrnMechPack, n_ions), layout.ions.len() as i64),
            (
                offset_of!(NrnMechPack, n_pointers),
                layout.pointers.len() as i64,
            ),
        ];
        let bad = self.b.create_block();
        let size = self.b.ins().load(
            types::I32,
            TRUSTED,
            self.pack,
            offset_of!(NrnMechPack, struct_size) as i32,
        );
        let big_enough = self.b.ins().icmp_imm_u(
            IntCC::UnsignedGreaterThanOrEqual,
            size,
            size_of::<NrnMechPack>() as i64,
        );
        let counts = self.b.create_block();
        self.b.ins().brif(big_enough, counts, &[], bad, &[]);
        self.b.switch_to_block(counts);
        let mut all = self.b.ins().iconst(types::I8, 1);
        for (offset, want) in expected {
            let n = self
                .b
                .ins()
                .load(types::I32, TRUSTED, self.pack, offset as i32);
            let eq = self.b.ins().icmp_imm_s(IntCC::Equal, n, want);
            all = self.b.ins().band(all, eq);
        }
        let good = self.b.create_block();
        self.b.ins().brif(all, good, &[], bad, &[]);
        self.b.switch_to_block(bad);
        let none = self.b.ins().iconst(types::I32, -1);
        self.b.ins().store(
            TRUSTED,
            none,
            self.pack,
            offset_of!(NrnMechPack, error_instance) as i32,
        );
        let status = self
            .b
            .ins()
            .iconst(types::I32, i64::from(STATUS_MECHANISM_ERROR));
        self.b.ins().return_(&[status]);
        self.b.switch_to_block(good);
    }

    fn zero_locals(&mut self) {
        for (h, a) in self.body.arrays.iter() {
            let zero = self.b.ins().f64const(0.0);
            let base = self
                .b
                .ins()
                .stack_addr(types::I64, self.arrays[h.index()], 0);
            if a.len <= 32 {
                for k in 0..a.len {
                    self.b.ins().store(TRUSTED, zero, base, (k * 8) as i32);
                }
            } else {
                // for (off = 0; off < 8·len; off += 8) base[off] = 0
                let off = self.b.declare_var(types::I64);
                let z = self.b.ins().iconst(types::I64, 0);
                self.b.def_var(off, z);
                let header = self.b.create_block();
                let body = self.b.create_block();
                let exit = self.b.create_block();
                self.b.ins().jump(header, &[]);
                self.b.switch_to_block(header);
                let o = self.b.use_var(off);
                let more =
                    self.b
                        .ins()
                        .icmp_imm_s(IntCC::UnsignedLessThan, o, i64::from(a.len) * 8);
                self.b.ins().brif(more, body, &[], exit, &[]);
                self.b.switch_to_block(body);
                let o = self.b.use_var(off);
                let addr = self.b.ins().iadd(base, o);
                self.b.ins().store(TRUSTED, zero, addr, 0);
                let next = self.b.ins().iadd_imm_s(o, 8);
                self.b.def_var(off, next);
                self.b.ins().jump(header, &[]);
                self.b.switch_to_block(exit);
            }
        }
        for (h, l) in self.body.locals.iter() {
            let v = match l.ty {
                Type::F64 => self.b.ins().f64const(0.0),
                Type::Bool => self.b.ins().iconst(types::I8, 0),
            };
            self.b.def_var(self.locals[h.index()], v);
        }
    }

    /// Jumps to the error exit with `status` when `ok` is false (zero).
    fn check(&mut self, ok: Value, status: i32) {
        let cont = self.b.create_block();
        let fail = self.b.create_block();
        self.b.ins().brif(ok, cont, &[], fail, &[]);
        self.b.switch_to_block(fail);
        let s = self.b.ins().iconst(types::I32, i64::from(status));
        self.b.def_var(self.status, s);
        self.b.ins().jump(self.error_block, &[]);
        self.b.switch_to_block(cont);
    }

    /// Continues in a fresh (unreachable) block after a terminator.
    fn dead_block(&mut self) {
        let dead = self.b.create_block();
        self.b.switch_to_block(dead);
    }

    fn pack_ptr(&mut self, offset: usize) -> Value {
        if let Some(v) = self.pack_ptrs.get(&offset) {
            return *v;
        }
        self.b
            .ins()
            .load(types::I64, TRUSTED, self.pack, offset as i32)
    }

    fn instance64(&mut self) -> Value {
        self.b.use_var(self.instance64)
    }

    /// `base + 8 * index` for an i64 index.
    fn elem8(&mut self, base: Value, index: Value) -> Value {
        let off = self.b.ins().ishl_imm_u(index, 3);
        self.b.ins().iadd(base, off)
    }

    /// Loads `array[instance]` of a u32 index array and widens it.
    fn index_u32(&mut self, array: Value) -> Value {
        let i = self.instance64();
        let off = self.b.ins().ishl_imm_u(i, 2);
        let addr = self.b.ins().iadd(array, off);
        let k = self.b.ins().load(types::I32, TRUSTED, addr, 0);
        self.b.ins().uextend(types::I64, k)
    }

    /// Evaluates a dynamic f64 index, checks `0 <= trunc(k) < len` and
    /// returns it as i64 (C `(int)` truncation).
    fn dynamic_index(&mut self, e: Handle<Expression>, len: u32) -> Value {
        let k = self.expr(e);
        let lo = self.b.ins().f64const(-1.0);
        let hi = self.b.ins().f64const(f64::from(len));
        let a = self.b.ins().fcmp(FloatCC::GreaterThan, k, lo);
        let c = self.b.ins().fcmp(FloatCC::LessThan, k, hi);
        let ok = self.b.ins().band(a, c);
        self.check(ok, STATUS_MECHANISM_ERROR);
        self.b.ins().fcvt_to_sint_sat(types::I64, k)
    }

    fn node_addr(&mut self, column: usize) -> Value {
        let node_index = self.pack_ptr(offset_of!(NrnMechPack, node_index));
        let n = self.index_u32(node_index);
        let col = self.pack_ptr(column);
        self.elem8(col, n)
    }

    fn ion_addr(&mut self, ion: Handle<IonDecl>, var: IonVar) -> Value {
        let ions = self.pack_ptr(offset_of!(NrnMechPack, ions));
        let pack = self
            .b
            .ins()
            .iadd_imm_s(ions, (ion.index() * size_of::<NrnIonPack>()) as i64);
        let index = self.b.ins().load(
            types::I64,
            TRUSTED,
            pack,
            offset_of!(NrnIonPack, index) as i32,
        );
        let k = self.index_u32(index);
        let offset = match var {
            IonVar::Erev => offset_of!(NrnIonPack, erev),
            IonVar::ConcI => offset_of!(NrnIonPack, conc_i),
            IonVar::ConcO => offset_of!(NrnIonPack, conc_o),
            IonVar::Cur => offset_of!(NrnIonPack, cur),
            IonVar::DcurDv => offset_of!(NrnIonPack, dcurdv),
        };
        let col = self.b.ins().load(types::I64, TRUSTED, pack, offset as i32);
        self.elem8(col, k)
    }

    /// The address of a place (evaluating its index and running its checks).
    fn place_addr(&mut self, place: &Place) -> Value {
        let layout = &self.vm.module().layout;
        match place {
            Place::Field { field, index } => {
                let column = self.vm.field_column(*field) as i64;
                let fields = self.pack_ptr(offset_of!(NrnMechPack, fields));
                let col = match index {
                    Some(ix) => {
                        let k = self.dynamic_index(*ix, layout.fields[*field].array_len);
                        let col_index = self.b.ins().iadd_imm_s(k, column);
                        let slot = self.elem8(fields, col_index);
                        self.b.ins().load(types::I64, TRUSTED, slot, 0)
                    }
                    None => match self.columns.get(&(column as usize)) {
                        Some(c) => *c,
                        None => self
                            .b
                            .ins()
                            .load(types::I64, TRUSTED, fields, (column * 8) as i32),
                    },
                };
                let i = self.instance64();
                self.elem8(col, i)
            }
            Place::Global { global, index } => {
                let first = self.vm.global_slot(*global) as i64;
                let globals = self.pack_ptr(offset_of!(NrnMechPack, globals));
                let k = match index {
                    Some(ix) => {
                        let k = self.dynamic_index(*ix, layout.globals[*global].array_len);
                        self.b.ins().iadd_imm_s(k, first)
                    }
                    None => self.b.ins().iconst(types::I64, first),
                };
                self.elem8(globals, k)
            }
            Place::NodeV => self.node_addr(offset_of!(NrnMechPack, vec_v)),
            Place::NodeArea => self.node_addr(offset_of!(NrnMechPack, vec_area)),
            Place::NodeDiam => self.node_addr(offset_of!(NrnMechPack, vec_diam)),
            Place::Ion { ion, var } => self.ion_addr(*ion, *var),
            Place::IonValence(ion) => {
                let ions = self.pack_ptr(offset_of!(NrnMechPack, ions));
                self.b.ins().iadd_imm_s(
                    ions,
                    (ion.index() * size_of::<NrnIonPack>() + offset_of!(NrnIonPack, valence))
                        as i64,
                )
            }
            Place::LocalArray { array, index } => {
                let len = self.body.arrays[*array].len;
                let k = self.dynamic_index(*index, len);
                let base = self
                    .b
                    .ins()
                    .stack_addr(types::I64, self.arrays[array.index()], 0);
                self.elem8(base, k)
            }
            Place::Pointer(p) => {
                let pointers = self.pack_ptr(offset_of!(NrnMechPack, pointers));
                let col = self
                    .b
                    .ins()
                    .load(types::I64, TRUSTED, pointers, (p.index() * 8) as i32);
                let i = self.instance64();
                let slot = self.elem8(col, i);
                let target = self.b.ins().load(types::I64, TRUSTED, slot, 0);
                let set = self.b.ins().icmp_imm_s(IntCC::NotEqual, target, 0);
                self.check(set, STATUS_POINTER_UNSET);
                target
            }
            Place::Weight(k) => {
                let (weights, n) = self.weights.expect("validated: weights in event kernels");
                let ok =
                    self.b
                        .ins()
                        .icmp_imm_s(IntCC::UnsignedGreaterThan, n, i64::from(*k as i32));
                self.check(ok, STATUS_MECHANISM_ERROR);
                self.b.ins().iadd_imm_s(weights, i64::from(*k) * 8)
            }
        }
    }

    fn math_ref(&mut self, fun: MathFn) -> FuncRef {
        if let Some(r) = self.math_refs.get(&fun) {
            return *r;
        }
        let r = self
            .jm
            .declare_func_in_func(self.ids.math[&fun], self.b.func);
        self.math_refs.insert(fun, r);
        r
    }

    fn call_math(&mut self, fun: MathFn, args: &[Value]) -> Value {
        // Exactly rounded operations are inline (no call, so no registers
        // spilled around one); each is bit for bit what `crate::math`
        // computes.
        match fun {
            MathFn::Sqrt => return self.b.ins().sqrt(args[0]),
            MathFn::Fabs => return self.b.ins().fabs(args[0]),
            MathFn::Floor => return self.b.ins().floor(args[0]),
            MathFn::Ceil => return self.b.ins().ceil(args[0]),
            MathFn::Exp if self.ids.inline_exp && self.hot => return self.inline_exp(args[0]),
            _ => {}
        }
        let r = self.math_ref(fun);
        let call = self.b.ins().call(r, args);
        self.b.inst_results(call)[0]
    }

    /// `exp(x)` as [`math::exp_table_driven`] computes it, instruction for
    /// instruction, with a call to the C library's `exp` outside its range.
    /// Used only where that function matches the C library bit for bit
    /// ([`math::table_exp_matches_libm`]) and the processor has FMA, so the
    /// result is always the C library's (NEURON's) exp of `x`.
    fn inline_exp(&mut self, x: Value) -> Value {
        use math::exp_consts::*;
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        let done = self.b.create_block();
        self.b.set_cold_block(slow);
        let result = self.b.append_block_param(done, types::F64);
        let flags = MemFlagsData::new();
        let bits = self.b.ins().bitcast(types::I64, flags, x);
        let top = self.b.ins().ushr_imm_u(bits, 52);
        let abstop = self.b.ins().band_imm_u(top, 0x7ff);
        let off = self.b.ins().iadd_imm_s(abstop, -(TOP_MIN as i64));
        let outside = self
            .b
            .ins()
            .icmp_imm_u(IntCC::UnsignedGreaterThan, off, TOP_SPAN as i64);
        self.b.ins().brif(outside, slow, &[], fast, &[]);

        self.b.switch_to_block(slow);
        let r = self.math_ref(MathFn::Exp);
        let call = self.b.ins().call(r, &[x]);
        let y = self.b.inst_results(call)[0];
        self.b.ins().jump(done, &[y.into()]);

        self.b.switch_to_block(fast);
        let c = |b: &mut FunctionBuilder, v: f64| b.ins().f64const(v);
        let inv = c(&mut self.b, INV_LN2_N);
        let shift = c(&mut self.b, SHIFT);
        let kd = self.b.ins().fma(x, inv, shift);
        let ki = self.b.ins().bitcast(types::I64, flags, kd);
        let kd = self.b.ins().fsub(kd, shift);
        let hi = c(&mut self.b, NEG_LN2_HI_N);
        let r = self.b.ins().fma(kd, hi, x);
        let lo = c(&mut self.b, NEG_LN2_LO_N);
        let r = self.b.ins().fma(kd, lo, r);
        let k = self.b.ins().band_imm_u(ki, 127);
        let offset = self.b.ins().ishl_imm_u(k, 4);
        let base = self
            .b
            .ins()
            .iconst(types::I64, math::EXP_TABLE.as_ptr() as i64);
        let entry = self.b.ins().iadd(base, offset);
        let table = MemFlagsData::trusted().with_readonly();
        let tail = self.b.ins().load(types::F64, table, entry, 0);
        let sbase = self.b.ins().load(types::I64, table, entry, 8);
        let shifted = self.b.ins().ishl_imm_u(ki, 45);
        let sbits = self.b.ins().iadd(sbase, shifted);
        let r2 = self.b.ins().fmul(r, r);
        let (c2, c3) = (c(&mut self.b, C2), c(&mut self.b, C3));
        let low = self.b.ins().fma(r, c3, c2);
        let (c4, c5) = (c(&mut self.b, C4), c(&mut self.b, C5));
        let high = self.b.ins().fma(r, c5, c4);
        let tail_r = self.b.ins().fadd(tail, r);
        let inner = self.b.ins().fma(low, r2, tail_r);
        let r4 = self.b.ins().fmul(r2, r2);
        let tmp = self.b.ins().fma(r4, high, inner);
        let scale = self.b.ins().bitcast(types::F64, flags, sbits);
        let y = self.b.ins().fma(scale, tmp, scale);
        self.b.ins().jump(done, &[y.into()]);

        self.b.switch_to_block(done);
        self.b.seal_block(slow);
        self.b.seal_block(fast);
        self.b.seal_block(done);
        result
    }

    /// Calls a user function; returns its result (0.0 for procedures).
    fn call_function(&mut self, function: Handle<Function>, args: &[Handle<Expression>]) -> Value {
        let mut values = Vec::with_capacity(args.len() + 3);
        values.push(self.pack);
        let i = self.b.use_var(self.instance);
        values.push(i);
        let ss = match self.ret_slot {
            Some(s) => s,
            None => {
                let ss = self.b.create_sized_stack_slot(StackSlotData::new(
                    StackSlotKind::ExplicitSlot,
                    8,
                    3,
                ));
                self.ret_slot = Some(ss);
                ss
            }
        };
        // The address is computed at each call so it dominates its uses.
        let slot = self.b.ins().stack_addr(types::I64, ss, 0);
        let zero = self.b.ins().f64const(0.0);
        self.b.ins().store(TRUSTED, zero, slot, 0);
        values.push(slot);
        for &a in args {
            let v = self.expr(a);
            values.push(v);
        }
        let r = match self.fn_refs.get(&function.index()) {
            Some(r) => *r,
            None => {
                let r = self
                    .jm
                    .declare_func_in_func(self.ids.functions[function.index()], self.b.func);
                self.fn_refs.insert(function.index(), r);
                r
            }
        };
        let call = self.b.ins().call(r, &values);
        let status = self.b.inst_results(call)[0];
        let cont = self.b.create_block();
        let fail = self.b.create_block();
        self.b.ins().brif(status, fail, &[], cont, &[]);
        self.b.switch_to_block(fail);
        self.b.def_var(self.status, status);
        self.b.ins().jump(self.error_block, &[]);
        self.b.switch_to_block(cont);
        self.b.ins().load(types::F64, TRUSTED, slot, 0)
    }

    fn host_sig(&mut self, name: &'static str) -> SigRef {
        if let Some(s) = self.host_sigs.get(name) {
            return *s;
        }
        let mut sig = Signature::new(self.jm.isa().default_call_conv());
        let p = |t| AbiParam::new(t);
        sig.params.push(p(types::I64)); // ctx
        match name {
            "net_send" => {
                sig.params
                    .extend([p(types::I32), p(types::I32), p(types::I64)]);
                sig.params.extend([p(types::F64), p(types::F64)]);
            }
            "net_event" | "net_move" => {
                sig.params
                    .extend([p(types::I32), p(types::I32), p(types::F64)]);
            }
            "random_uniform" => sig.returns.push(p(types::F64)),
            "set_seed" => sig.params.push(p(types::F64)),
            _ => unreachable!("unknown host function"),
        }
        let s = self.b.import_signature(sig);
        self.host_sigs.insert(name, s);
        s
    }

    /// Loads the host context and one callback pointer.
    fn host_fn(&mut self, offset: usize) -> (Value, Value) {
        let host = self.pack_ptr(offset_of!(NrnMechPack, host));
        let ctx = self.b.ins().load(
            types::I64,
            TRUSTED,
            host,
            offset_of!(NrnHostApi, ctx) as i32,
        );
        let f = self.b.ins().load(types::I64, TRUSTED, host, offset as i32);
        (ctx, f)
    }

    fn mech_id(&mut self) -> Value {
        self.b.ins().load(
            types::I32,
            TRUSTED,
            self.pack,
            offset_of!(NrnMechPack, mech_id) as i32,
        )
    }

    /// Evaluates an expression into a cranelift value (F64 or I8 0/1).
    fn expr(&mut self, h: Handle<Expression>) -> Value {
        let body = self.body;
        match &body.expressions[h] {
            Expression::Constant(x) => self.b.ins().f64const(*x),
            Expression::Bool(v) => self.b.ins().iconst(types::I8, i64::from(*v)),
            Expression::Local(l) => self.b.use_var(self.locals[l.index()]),
            Expression::Load(place) => {
                let addr = self.place_addr(place);
                self.b.ins().load(types::F64, TRUSTED, addr, 0)
            }
            Expression::Env(var) => match var {
                EnvVar::T => self.b.ins().load(
                    types::F64,
                    TRUSTED,
                    self.pack,
                    offset_of!(NrnMechPack, t) as i32,
                ),
                EnvVar::Dt => self.b.ins().load(
                    types::F64,
                    TRUSTED,
                    self.pack,
                    offset_of!(NrnMechPack, dt) as i32,
                ),
                EnvVar::Celsius => self.b.ins().load(
                    types::F64,
                    TRUSTED,
                    self.pack,
                    offset_of!(NrnMechPack, celsius) as i32,
                ),
                EnvVar::SecondOrder => {
                    let s = self.b.ins().load(
                        types::I32,
                        TRUSTED,
                        self.pack,
                        offset_of!(NrnMechPack, secondorder) as i32,
                    );
                    self.b.ins().fcvt_from_sint(types::F64, s)
                }
                EnvVar::Flag => self.flag.expect("validated: flag in event kernels"),
            },
            Expression::Unary { op, arg } => {
                let a = self.expr(*arg);
                match op {
                    UnaryOp::Neg => self.b.ins().fneg(a),
                    UnaryOp::Not => self.b.ins().bxor_imm_u(a, 1),
                }
            }
            Expression::Binary { op, left, right } => match op {
                BinaryOp::And | BinaryOp::Or => {
                    let result = self.b.declare_var(types::I8);
                    let a = self.expr(*left);
                    self.b.def_var(result, a);
                    let rhs = self.b.create_block();
                    let merge = self.b.create_block();
                    if *op == BinaryOp::And {
                        self.b.ins().brif(a, rhs, &[], merge, &[]);
                    } else {
                        self.b.ins().brif(a, merge, &[], rhs, &[]);
                    }
                    self.b.switch_to_block(rhs);
                    let c = self.expr(*right);
                    self.b.def_var(result, c);
                    self.b.ins().jump(merge, &[]);
                    self.b.switch_to_block(merge);
                    self.b.use_var(result)
                }
                _ => {
                    let x = self.expr(*left);
                    let y = self.expr(*right);
                    let cmp = |cc| Some(cc);
                    let cc = match op {
                        BinaryOp::Lt => cmp(FloatCC::LessThan),
                        BinaryOp::Le => cmp(FloatCC::LessThanOrEqual),
                        BinaryOp::Gt => cmp(FloatCC::GreaterThan),
                        BinaryOp::Ge => cmp(FloatCC::GreaterThanOrEqual),
                        BinaryOp::Eq => cmp(FloatCC::Equal),
                        BinaryOp::Ne => cmp(FloatCC::NotEqual),
                        _ => None,
                    };
                    if let Some(cc) = cc {
                        return self.b.ins().fcmp(cc, x, y);
                    }
                    match op {
                        BinaryOp::Add => self.b.ins().fadd(x, y),
                        BinaryOp::Sub => self.b.ins().fsub(x, y),
                        BinaryOp::Mul => self.b.ins().fmul(x, y),
                        BinaryOp::Div => self.b.ins().fdiv(x, y),
                        BinaryOp::Pow => self.call_math(MathFn::Pow, &[x, y]),
                        _ => unreachable!("comparisons handled above"),
                    }
                }
            },
            Expression::Select {
                condition,
                accept,
                reject,
            } => {
                let ty = match self.vm_type(*accept) {
                    Type::F64 => types::F64,
                    Type::Bool => types::I8,
                };
                let result = self.b.declare_var(ty);
                let c = self.expr(*condition);
                let yes = self.b.create_block();
                let no = self.b.create_block();
                let merge = self.b.create_block();
                self.b.ins().brif(c, yes, &[], no, &[]);
                self.b.switch_to_block(yes);
                let a = self.expr(*accept);
                self.b.def_var(result, a);
                self.b.ins().jump(merge, &[]);
                self.b.switch_to_block(no);
                let r = self.expr(*reject);
                self.b.def_var(result, r);
                self.b.ins().jump(merge, &[]);
                self.b.switch_to_block(merge);
                self.b.use_var(result)
            }
            Expression::Math { fun, args } => {
                let values: Vec<Value> = args.iter().map(|&a| self.expr(a)).collect();
                self.call_math(*fun, &values)
            }
            Expression::Call { function, args } => self.call_function(*function, args),
            Expression::RandomUniform => {
                let (ctx, f) = self.host_fn(offset_of!(NrnHostApi, random_uniform));
                let sig = self.host_sig("random_uniform");
                let call = self.b.ins().call_indirect(sig, f, &[ctx]);
                self.b.inst_results(call)[0]
            }
            Expression::BoolToF64(a) => {
                let a = self.expr(*a);
                let w = self.b.ins().uextend(types::I32, a);
                self.b.ins().fcvt_from_uint(types::F64, w)
            }
            Expression::F64ToBool(a) => {
                let a = self.expr(*a);
                let zero = self.b.ins().f64const(0.0);
                self.b.ins().fcmp(FloatCC::NotEqual, a, zero)
            }
        }
    }

    fn vm_type(&self, e: Handle<Expression>) -> Type {
        // Recompute locally: the expression arena is small and typed by the
        // validator; only Select needs it, for its result variable.
        match &self.body.expressions[e] {
            Expression::Bool(_) | Expression::F64ToBool(_) => Type::Bool,
            Expression::Local(l) => self.body.locals[*l].ty,
            Expression::Unary { op, .. } => match op {
                UnaryOp::Neg => Type::F64,
                UnaryOp::Not => Type::Bool,
            },
            Expression::Binary { op, .. } => op.types().1,
            Expression::Select { accept, .. } => self.vm_type(*accept),
            _ => Type::F64,
        }
    }

    fn block(&mut self, block: &'a [Statement]) {
        for s in block {
            self.statement(s);
        }
    }

    fn statement(&mut self, s: &'a Statement) {
        match s {
            Statement::Assign { local, value } => {
                let v = self.expr(*value);
                self.b.def_var(self.locals[local.index()], v);
            }
            Statement::Store { place, value } => {
                let addr = self.place_addr(place);
                let v = self.expr(*value);
                self.b.ins().store(TRUSTED, v, addr, 0);
            }
            Statement::Accumulate { target, op, value } => {
                let x = self.expr(*value);
                let addr = match target {
                    AccumTarget::NodeRhs => self.node_addr(offset_of!(NrnMechPack, vec_rhs)),
                    AccumTarget::NodeD => self.node_addr(offset_of!(NrnMechPack, vec_d)),
                    AccumTarget::IonCur(ion) => self.ion_addr(*ion, IonVar::Cur),
                    AccumTarget::IonDcurDv(ion) => self.ion_addr(*ion, IonVar::DcurDv),
                };
                let old = self.b.ins().load(types::F64, TRUSTED, addr, 0);
                let new = match op {
                    AccumOp::Add => self.b.ins().fadd(old, x),
                    AccumOp::Sub => self.b.ins().fsub(old, x),
                };
                self.b.ins().store(TRUSTED, new, addr, 0);
            }
            Statement::If {
                condition,
                accept,
                reject,
            } => {
                let c = self.expr(*condition);
                let yes = self.b.create_block();
                let no = self.b.create_block();
                let merge = self.b.create_block();
                self.b.ins().brif(c, yes, &[], no, &[]);
                self.b.switch_to_block(yes);
                self.block(accept);
                self.b.ins().jump(merge, &[]);
                self.b.switch_to_block(no);
                self.block(reject);
                self.b.ins().jump(merge, &[]);
                self.b.switch_to_block(merge);
            }
            Statement::While {
                condition,
                body,
                max_iterations,
            } => {
                let iterations = self.b.declare_var(types::I32);
                let zero = self.b.ins().iconst(types::I32, 0);
                self.b.def_var(iterations, zero);
                let header = self.b.create_block();
                let capped = self.b.create_block();
                let exit = self.b.create_block();
                self.b.ins().jump(header, &[]);
                self.b.switch_to_block(header);
                let c = self.expr(*condition);
                self.b.ins().brif(c, capped, &[], exit, &[]);
                self.b.switch_to_block(capped);
                self.loop_cap(iterations, *max_iterations);
                self.block(body);
                self.b.ins().jump(header, &[]);
                self.b.switch_to_block(exit);
            }
            Statement::ForRange {
                var,
                start,
                end,
                step,
                body,
                max_iterations,
            } => {
                let var = self.locals[var.index()];
                let x = self.expr(*start);
                self.b.def_var(var, x);
                let end = self.expr(*end);
                let end_var = self.b.declare_var(types::F64);
                self.b.def_var(end_var, end);
                let iterations = self.b.declare_var(types::I32);
                let zero = self.b.ins().iconst(types::I32, 0);
                self.b.def_var(iterations, zero);
                let header = self.b.create_block();
                let capped = self.b.create_block();
                let exit = self.b.create_block();
                self.b.ins().jump(header, &[]);
                self.b.switch_to_block(header);
                let v = self.b.use_var(var);
                let end = self.b.use_var(end_var);
                let cc = if *step > 0.0 {
                    FloatCC::LessThanOrEqual
                } else {
                    FloatCC::GreaterThanOrEqual
                };
                let go = self.b.ins().fcmp(cc, v, end);
                self.b.ins().brif(go, capped, &[], exit, &[]);
                self.b.switch_to_block(capped);
                self.loop_cap(iterations, *max_iterations);
                self.block(body);
                let v = self.b.use_var(var);
                let step = self.b.ins().f64const(*step);
                let next = self.b.ins().fadd(v, step);
                self.b.def_var(var, next);
                self.b.ins().jump(header, &[]);
                self.b.switch_to_block(exit);
            }
            Statement::Call { function, args } => {
                self.call_function(*function, args);
            }
            Statement::NetSend { delay, flag } => {
                let d = self.expr(*delay);
                let f = self.expr(*flag);
                let (ctx, fp) = self.host_fn(offset_of!(NrnHostApi, net_send));
                let mech = self.mech_id();
                let i = self.b.use_var(self.instance);
                let w = match self.weights {
                    Some((w, _)) => w,
                    None => self.b.ins().iconst(types::I64, 0),
                };
                let sig = self.host_sig("net_send");
                self.b
                    .ins()
                    .call_indirect(sig, fp, &[ctx, mech, i, w, d, f]);
            }
            Statement::NetEvent { time } | Statement::NetMove { time } => {
                let t = self.expr(*time);
                let (offset, name) = if matches!(s, Statement::NetEvent { .. }) {
                    (offset_of!(NrnHostApi, net_event), "net_event")
                } else {
                    (offset_of!(NrnHostApi, net_move), "net_move")
                };
                let (ctx, fp) = self.host_fn(offset);
                let mech = self.mech_id();
                let i = self.b.use_var(self.instance);
                let sig = self.host_sig(name);
                self.b.ins().call_indirect(sig, fp, &[ctx, mech, i, t]);
            }
            Statement::SetSeed { seed } => {
                let x = self.expr(*seed);
                let (ctx, fp) = self.host_fn(offset_of!(NrnHostApi, set_seed));
                let sig = self.host_sig("set_seed");
                self.b.ins().call_indirect(sig, fp, &[ctx, x]);
            }
            Statement::Return => {
                self.b.ins().jump(self.return_block, &[]);
                self.dead_block();
            }
            Statement::Error { status } => {
                let s = self.b.ins().iconst(types::I32, i64::from(*status));
                self.b.def_var(self.status, s);
                self.b.ins().jump(self.error_block, &[]);
                self.dead_block();
            }
        }
    }

    /// Fails when `iterations == max`, else increments it.
    fn loop_cap(&mut self, iterations: Variable, max: u32) {
        let it = self.b.use_var(iterations);
        let below = self
            .b
            .ins()
            .icmp_imm_s(IntCC::NotEqual, it, i64::from(max as i32));
        self.check(below, STATUS_MECHANISM_ERROR);
        let it = self.b.use_var(iterations);
        let next = self.b.ins().iadd_imm_s(it, 1);
        self.b.def_var(iterations, next);
    }
}

/// The scalar field columns a body reads or writes (to hoist their pointers).
fn scalar_columns(vm: &ValidModule, body: &Body) -> Vec<usize> {
    fn place(vm: &ValidModule, p: &Place, out: &mut Vec<usize>) {
        if let Place::Field { field, index: None } = p {
            let c = vm.field_column(*field);
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    fn block(vm: &ValidModule, b: &[Statement], out: &mut Vec<usize>) {
        for s in b {
            match s {
                Statement::Store { place: p, .. } => place(vm, p, out),
                Statement::If { accept, reject, .. } => {
                    block(vm, accept, out);
                    block(vm, reject, out);
                }
                Statement::While { body, .. } | Statement::ForRange { body, .. } => {
                    block(vm, body, out)
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for (_, e) in body.expressions.iter() {
        if let Expression::Load(p) = e {
            place(vm, p, &mut out);
        }
    }
    block(vm, &body.block, &mut out);
    out
}

// ---------------------------------------------------------------------------
// Test runners: build a real NrnMechPack over MechData and call the kernels.

unsafe extern "C" fn host_net_send(
    ctx: *mut c_void,
    _mech: u32,
    instance: u32,
    weights: *mut f64,
    delay: f64,
    flag: f64,
) {
    // SAFETY: `ctx` is the `&mut RecordingHost` the runner put in the pack; it
    // is live and not otherwise borrowed for the duration of the kernel call.
    let host = unsafe { &mut *ctx.cast::<RecordingHost>() };
    host.calls.push(HostCall::NetSend {
        instance,
        has_weights: !weights.is_null(),
        delay,
        flag,
    });
}

unsafe extern "C" fn host_net_event(ctx: *mut c_void, _mech: u32, instance: u32, t: f64) {
    // SAFETY: as in `host_net_send`.
    let host = unsafe { &mut *ctx.cast::<RecordingHost>() };
    host.calls.push(HostCall::NetEvent { instance, t });
}

unsafe extern "C" fn host_net_move(ctx: *mut c_void, _mech: u32, instance: u32, t: f64) {
    // SAFETY: as in `host_net_send`.
    let host = unsafe { &mut *ctx.cast::<RecordingHost>() };
    host.calls.push(HostCall::NetMove { instance, t });
}

unsafe extern "C" fn host_random_uniform(ctx: *mut c_void) -> f64 {
    // SAFETY: as in `host_net_send`.
    let host = unsafe { &mut *ctx.cast::<RecordingHost>() };
    host.random_uniform()
}

unsafe extern "C" fn host_set_seed(ctx: *mut c_void, seed: f64) {
    // SAFETY: as in `host_net_send`.
    let host = unsafe { &mut *ctx.cast::<RecordingHost>() };
    host.set_seed(seed);
}

/// The raw arrays a pack points into; they must outlive the call.
struct PackStorage {
    field_ptrs: Vec<*mut f64>,
    ion_packs: Vec<NrnIonPack>,
    pointer_cols: Vec<Vec<*mut f64>>,
    pointer_ptrs: Vec<*const *mut f64>,
    host: NrnHostApi,
}

/// Builds a pack over `data`. All pointers derive from the one `&mut data`
/// and stay valid while `data` and the storage are not touched otherwise.
fn build_pack(data: &mut MechData, storage: &mut PackStorage) -> NrnMechPack {
    storage.field_ptrs = data.fields.iter_mut().map(|c| c.as_mut_ptr()).collect();
    storage.ion_packs = data
        .ions
        .iter_mut()
        .map(|ion| NrnIonPack {
            index: ion.index.as_ptr(),
            erev: ion.erev.as_mut_ptr(),
            conc_i: ion.conc_i.as_mut_ptr(),
            conc_o: ion.conc_o.as_mut_ptr(),
            cur: ion.cur.as_mut_ptr(),
            dcurdv: ion.dcurdv.as_mut_ptr(),
            valence: ion.valence,
            n_instances: ion.erev.len() as u32,
            reserved: 0,
        })
        .collect();
    let pool = data.pointer_pool.as_mut_ptr();
    storage.pointer_cols = data
        .pointers
        .iter()
        .map(|col| {
            col.iter()
                .map(|p| match p {
                    // SAFETY: `check` verified `k < pointer_pool.len()`, so the
                    // offset stays inside the pool's allocation.
                    Some(k) => unsafe { pool.add(*k) },
                    None => std::ptr::null_mut(),
                })
                .collect()
        })
        .collect();
    storage.pointer_ptrs = storage.pointer_cols.iter().map(|c| c.as_ptr()).collect();
    storage.host = NrnHostApi {
        ctx: (&mut data.host as *mut RecordingHost).cast(),
        net_send: host_net_send,
        net_event: host_net_event,
        net_move: host_net_move,
        random_uniform: host_random_uniform,
        set_seed: host_set_seed,
    };
    NrnMechPack {
        struct_size: size_of::<NrnMechPack>() as u32,
        mech_id: data.mech_id,
        count: data.count as u32,
        secondorder: data.secondorder,
        t: data.t,
        dt: data.dt,
        celsius: data.celsius,
        node_index: data.node_index.as_ptr(),
        vec_v: data.v.as_mut_ptr(),
        vec_rhs: data.rhs.as_mut_ptr(),
        vec_d: data.d.as_mut_ptr(),
        vec_area: data.area.as_ptr(),
        vec_diam: data.diam.as_ptr(),
        fields: storage.field_ptrs.as_ptr(),
        globals: data.globals.as_mut_ptr(),
        ions: storage.ion_packs.as_ptr(),
        pointers: storage.pointer_ptrs.as_ptr(),
        host: &storage.host,
        error_instance: data.error_instance,
        reserved: 0,
        n_nodes: data.v.len() as u32,
        n_fields: storage.field_ptrs.len() as u32,
        n_globals: data.globals.len() as u32,
        n_ions: storage.ion_packs.len() as u32,
        n_pointers: storage.pointer_ptrs.len() as u32,
        padded_count: padded(data.count) as u32,
    }
}

fn empty_storage() -> PackStorage {
    PackStorage {
        field_ptrs: Vec::new(),
        ion_packs: Vec::new(),
        pointer_cols: Vec::new(),
        pointer_ptrs: Vec::new(),
        host: NrnHostApi {
            ctx: std::ptr::null_mut(),
            net_send: host_net_send,
            net_event: host_net_event,
            net_move: host_net_move,
            random_uniform: host_random_uniform,
            set_seed: host_set_seed,
        },
    }
}

/// Runs the JIT kernel of a per-instance or instance-less `phase` over `data`
/// (the JIT counterpart of [`crate::interp::run_kernel`], same results).
/// `jit` must have been compiled from `vm`.
pub fn run_kernel(
    jit: &JitModule,
    vm: &ValidModule,
    phase: Phase,
    data: &mut MechData,
) -> Result<i32, DataError> {
    if phase.shape() == Shape::Event {
        data.check(vm)?;
        return Ok(STATUS_MECHANISM_ERROR);
    }
    let Some(kernel) = jit.kernel(phase) else {
        data.check(vm)?;
        return Ok(STATUS_OK);
    };
    // SAFETY: `kernel` was compiled by `jit` from `vm`, and `jit` keeps its
    // code alive for the call.
    unsafe { run_native_kernel(kernel, vm, data, |_| {}) }
}

/// Runs a native per-instance kernel (from this JIT or from a library the
/// Rust back end generated) over `data` through a real `NrnMechPack`;
/// `tamper` may change the pack first (to test a kernel's own pack check).
/// The test harness of both back ends.
///
/// # Safety
/// `kernel` must have been generated from `vm` (so that its accesses match
/// the layout `data.check` verifies) and its code must stay alive during
/// the call.
pub unsafe fn run_native_kernel(
    kernel: NrnKernelFn,
    vm: &ValidModule,
    data: &mut MechData,
    tamper: impl FnOnce(&mut NrnMechPack),
) -> Result<i32, DataError> {
    data.check(vm)?;
    let mut storage = empty_storage();
    let mut pack = build_pack(data, &mut storage);
    tamper(&mut pack);
    // SAFETY: `data.check` verified every column length and index against the
    // layout the kernel was generated for (the caller's contract), so its
    // accesses stay in bounds; the pack and storage outlive the call.
    let status = unsafe { kernel(&mut pack) };
    data.error_instance = pack.error_instance;
    Ok(status)
}

/// Runs the JIT event kernel of `phase` for one event (the counterpart of
/// [`crate::interp::run_event`]). `jit` must have been compiled from `vm`.
pub fn run_event(
    jit: &JitModule,
    vm: &ValidModule,
    phase: Phase,
    data: &mut MechData,
    instance: u32,
    weights: &mut [f64],
    flag: f64,
) -> Result<i32, DataError> {
    if phase.shape() != Shape::Event {
        data.check(vm)?;
        return Ok(STATUS_MECHANISM_ERROR);
    }
    let Some(kernel) = jit.event_kernel(phase) else {
        data.check(vm)?;
        if instance as usize >= data.count {
            return Err(DataError(format!("instance {instance} out of range")));
        }
        return Ok(STATUS_OK);
    };
    // SAFETY: as in `run_kernel`.
    unsafe { run_native_event(kernel, vm, data, instance, weights, flag) }
}

/// Runs a native event kernel for one event at `instance`, with the
/// NetCon's `weights` and `flag` (see [`run_native_kernel`]).
///
/// # Safety
/// As for [`run_native_kernel`].
pub unsafe fn run_native_event(
    kernel: NrnNetReceiveFn,
    vm: &ValidModule,
    data: &mut MechData,
    instance: u32,
    weights: &mut [f64],
    flag: f64,
) -> Result<i32, DataError> {
    data.check(vm)?;
    if instance as usize >= data.count {
        return Err(DataError(format!("instance {instance} out of range")));
    }
    let n_weights =
        u32::try_from(weights.len()).map_err(|_| DataError("too many weights".into()))?;
    let mut storage = empty_storage();
    let mut pack = build_pack(data, &mut storage);
    // SAFETY: as in `run_native_kernel`; additionally `instance < count` was
    // checked and `weights` is a live slice of `n_weights` elements.
    let status = unsafe { kernel(&mut pack, instance, weights.as_mut_ptr(), n_weights, flag) };
    data.error_instance = pack.error_instance;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::valid::validate;

    /// A kernel refuses a pack whose counts or size do not match its layout.
    #[test]
    fn kernel_rejects_a_pack_of_another_shape() {
        let mut m = Module::default();
        let f = m.layout.fields.append(FieldDecl {
            name: "x".into(),
            array_len: 1,
        });
        let mut body = Body::default();
        let one = body.constant(1.0);
        body.block.push(Statement::Store {
            place: Place::Field {
                field: f,
                index: None,
            },
            value: one,
        });
        m.kernels.push(Kernel {
            phase: Phase::Init,
            body,
        });
        let vm = validate(&m).expect("valid");
        let jit = compile(&vm).expect("compiles");
        let kernel = jit.kernel(Phase::Init).expect("init kernel");
        let tamper: [fn(&mut NrnMechPack); 3] =
            [|p| p.n_fields = 2, |p| p.n_ions = 1, |p| p.struct_size = 8];
        for t in tamper {
            let mut data = MechData::new(&vm, 2, 1);
            let mut storage = empty_storage();
            let mut pack = build_pack(&mut data, &mut storage);
            t(&mut pack);
            // SAFETY: the pack points into `data` and `storage`, which outlive
            // the call; the kernel must reject it before reading any column.
            let status = unsafe { kernel(&mut pack) };
            assert_eq!(status, STATUS_MECHANISM_ERROR);
            assert_eq!(pack.error_instance, u32::MAX);
            assert_eq!(data.fields[0][0], 0.0);
        }
        let mut data = MechData::new(&vm, 2, 1);
        assert_eq!(run_kernel(&jit, &vm, Phase::Init, &mut data), Ok(STATUS_OK));
        assert_eq!(&data.fields[0][..2], &[1.0, 1.0]);
    }
}

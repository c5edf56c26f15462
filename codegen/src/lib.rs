//! codegen (see ARCHITECTURE.md).

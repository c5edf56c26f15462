//! runtime (see ARCHITECTURE.md).

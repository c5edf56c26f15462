//! nmodl-frontend (see ARCHITECTURE.md).

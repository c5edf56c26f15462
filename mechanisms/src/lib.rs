//! mechanisms (see ARCHITECTURE.md).

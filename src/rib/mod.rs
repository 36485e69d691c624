//! Routing information: what each peer sent us (Adj-RIB-In, kept before and
//! after import policy), what we originate, and what we send.
//!
//! Sans-IO: UPDATE values in, tables and encoded UPDATEs out. For step 1 the
//! table is per peer; selection and reflection across peers come with the
//! Loc-RIB.

mod adj_in;
mod export;
mod policy;

pub use adj_in::{AdjRibIn, InRoute, Learned};
pub use export::{
    announce_originated, end_of_rib, originated_attributes, withdraw_originated, ExportContext,
};
pub use policy::{FilterReason, ImportPolicy};

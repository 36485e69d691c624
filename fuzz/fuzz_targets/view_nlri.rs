//! NLRI of a routing view's family (AFI 1/2, SAFI 241): validate, then the
//! iteration of what validates yields as many entries and re-encodes to the
//! same bytes up to the host bits.
#![no_main]

use bytes::{Bytes, BytesMut};
use kittbgpd::wire::view_nlri::{put, validate, ViewPrefixes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&afi, list)) = data.split_first() else { return };
    let afi = if afi & 1 == 0 { 1 } else { 2 };
    let Ok(n) = validate(afi, list) else { return };
    let entries: Vec<_> = ViewPrefixes::validated(afi, Bytes::copy_from_slice(list)).collect();
    assert_eq!(entries.len(), n);
    let mut again = BytesMut::new();
    for (id, p) in &entries {
        put(&mut again, *id, *p);
    }
    assert_eq!(again.len(), list.len());
    let back: Vec<_> = ViewPrefixes::new(afi, again.freeze()).unwrap().collect();
    assert_eq!(back, entries);
});

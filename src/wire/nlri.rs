//! Prefix encoding of RFC 4271 §4.3 (and RFC 4760 §5 for IPv6): a length
//! octet in bits, then the fewest octets holding that many bits.
//!
//! Lists are validated once ([`validate_v4`], [`validate_v6`]) and then iterated
//! lazily from the received `Bytes`. RFC 4271 §4.3 says the trailing bits after the
//! prefix length are irrelevant: they are accepted on input and cleared when a
//! prefix is yielded (`trunc()`), so a yielded prefix never has host bits set.

use bytes::{BufMut, Bytes};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// A prefix list is not a whole number of well-formed prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NlriError {
    #[error("prefix length {0} exceeds the address size")]
    BadLength(u8),
    #[error("prefix runs past the end of the field")]
    Truncated,
}

/// Octets of one prefix of `bits`, length octet included: 1 + ⌈bits / 8⌉ as
/// one add and one shift. Each position in a list depends on the length octet
/// before it, so this sum is the critical path of every walk over a list.
#[inline(always)]
fn stride_of(bits: u8) -> usize {
    (usize::from(bits) + 15) >> 3
}

#[inline]
fn validate(buf: &[u8], max_bits: u8) -> Result<usize, NlriError> {
    let mut pos = 0;
    let mut count = 0;
    // Leading run of host routes (/32, /128: loopbacks, the fabric's common
    // case) with a constant stride: a predicted loop branch instead of the
    // `pos += f(buf[pos])` load->add dependency, so the CPU runs ahead.
    let stride = 1 + usize::from(max_bits) / 8;
    while pos < buf.len() && buf[pos] == max_bits {
        pos += stride;
        count += 1;
    }
    // Mixed lengths: no data-dependent branch (mispredictions would cost
    // more than the dependency chain).
    while let Some(&bits) = buf.get(pos) {
        if bits > max_bits {
            return Err(NlriError::BadLength(bits));
        }
        pos += stride_of(bits);
        count += 1;
    }
    if pos > buf.len() {
        return Err(NlriError::Truncated);
    }
    Ok(count)
}

/// Checks a list of (Path Identifier, prefix) entries (RFC 7911 §3): 4
/// octets of path id before each prefix.
fn validate_paths(buf: &[u8], max_bits: u8) -> Result<usize, NlriError> {
    let mut pos = 0;
    let mut count = 0;
    while pos < buf.len() {
        let Some(&bits) = buf.get(pos + 4) else {
            return Err(NlriError::Truncated);
        };
        if bits > max_bits {
            return Err(NlriError::BadLength(bits));
        }
        pos += 4 + stride_of(bits);
        count += 1;
    }
    if pos > buf.len() {
        return Err(NlriError::Truncated);
    }
    Ok(count)
}

/// Checks an IPv4 list, with a Path Identifier before each prefix if
/// `add_path` (RFC 7911 §3); returns the number of prefixes.
pub fn validate_v4_as(buf: &[u8], add_path: bool) -> Result<usize, NlriError> {
    if add_path {
        validate_paths(buf, 32)
    } else {
        validate(buf, 32)
    }
}

/// Checks an IPv6 list, with Path Identifiers if `add_path`.
pub fn validate_v6_as(buf: &[u8], add_path: bool) -> Result<usize, NlriError> {
    if add_path {
        validate_paths(buf, 128)
    } else {
        validate(buf, 128)
    }
}

/// Checks an IPv4 prefix list; returns the number of prefixes.
pub fn validate_v4(buf: &[u8]) -> Result<usize, NlriError> {
    validate(buf, 32)
}

/// Checks an IPv6 prefix list; returns the number of prefixes.
pub fn validate_v6(buf: &[u8]) -> Result<usize, NlriError> {
    validate(buf, 128)
}

/// Octets one prefix of `bits` takes on the wire.
#[inline]
pub fn encoded_len(bits: u8) -> usize {
    1 + usize::from(bits).div_ceil(8)
}

/// Appends one IPv4 prefix.
#[inline]
pub fn put_v4(out: &mut impl BufMut, p: Ipv4Net) {
    let bits = p.prefix_len();
    out.put_u8(bits);
    let octets = p.network().octets();
    out.put_slice(&octets[..usize::from(bits).div_ceil(8)]);
}

/// Appends one IPv6 prefix.
#[inline]
pub fn put_v6(out: &mut impl BufMut, p: Ipv6Net) {
    let bits = p.prefix_len();
    out.put_u8(bits);
    let octets = p.network().octets();
    out.put_slice(&octets[..usize::from(bits).div_ceil(8)]);
}

/// Octets one prefix of `bits` takes, with a Path Identifier if `add_path`.
#[inline]
pub fn encoded_len_as(bits: u8, add_path: bool) -> usize {
    encoded_len(bits) + if add_path { 4 } else { 0 }
}

/// Appends one prefix of either family.
pub fn put(out: &mut impl BufMut, p: IpNet) {
    match p {
        IpNet::V4(p) => put_v4(out, p),
        IpNet::V6(p) => put_v6(out, p),
    }
}

/// What [`Ipv4Prefixes`] and [`Ipv6Prefixes`] share: construction, Path
/// Identifiers (RFC 7911 §3) and iteration over `next_prefix`.
macro_rules! prefix_list {
    ($list:ident, $net:ty, $validate:ident, $validate_as:ident) => {
        impl $list {
            /// Validates `buf` and iterates it.
            pub fn new(buf: Bytes) -> Result<Self, NlriError> {
                $validate(&buf)?;
                Ok(Self::validated(buf))
            }

            /// Iterates `buf` that was validated earlier.
            pub(crate) fn validated(buf: Bytes) -> Self {
                Self::validated_as(buf, false)
            }

            /// Iterates `buf` validated earlier, with Path Identifiers if `add_path`.
            pub(crate) fn validated_as(buf: Bytes, add_path: bool) -> Self {
                Self {
                    buf,
                    pos: 0,
                    add_path,
                    mixed: false,
                }
            }

            /// Validates `buf` (with Path Identifiers if `add_path`) and iterates it.
            pub fn new_as(buf: Bytes, add_path: bool) -> Result<Self, NlriError> {
                $validate_as(&buf, add_path)?;
                Ok(Self::validated_as(buf, add_path))
            }

            /// The next (Path Identifier, prefix); the id is 0 without ADD-PATH.
            #[inline]
            pub fn next_path(&mut self) -> Option<(u32, $net)> {
                let id = self.path_id()?;
                self.next_prefix().map(|p| (id, p))
            }

            /// (Path Identifier, prefix) pairs; ids are 0 without ADD-PATH.
            pub fn with_path_ids(mut self) -> impl Iterator<Item = (u32, $net)> {
                std::iter::from_fn(move || self.next_path())
            }

            #[inline]
            fn path_id(&mut self) -> Option<u32> {
                if !self.add_path {
                    return Some(0);
                }
                let &[a, b, c, d] = self.buf.get(self.pos..self.pos + 4)? else {
                    return None;
                };
                self.pos += 4;
                Some(u32::from_be_bytes([a, b, c, d]))
            }
        }

        impl Iterator for $list {
            type Item = $net;

            #[inline]
            fn next(&mut self) -> Option<$net> {
                if self.add_path {
                    self.path_id()?;
                }
                self.next_prefix()
            }
        }
    };
}

prefix_list!(Ipv4Prefixes, Ipv4Net, validate_v4, validate_v4_as);
prefix_list!(Ipv6Prefixes, Ipv6Net, validate_v6, validate_v6_as);

/// Iterator over a validated IPv4 prefix list. Stops at the first malformed
/// entry, so it never panics even on unvalidated input.
#[derive(Clone, Debug, Default)]
pub struct Ipv4Prefixes {
    buf: Bytes,
    pos: usize,
    /// A 4-octet Path Identifier precedes each prefix (RFC 7911 §3).
    add_path: bool,
    /// Past the leading run of host routes (see `next_prefix`).
    mixed: bool,
}

impl Ipv4Prefixes {
    #[inline]
    fn next_prefix(&mut self) -> Option<Ipv4Net> {
        let rest = self.buf.get(self.pos..)?;
        // Leading run of host routes (/32: loopbacks, the fabric's common
        // case): a predicted branch and a constant stride, so the CPU runs
        // ahead of each length octet's load. Left for good at the first other
        // length: in a mixed list that branch would mispredict at every change.
        if !self.mixed {
            if let [32, a, b, c, d, ..] = *rest {
                self.pos += 5;
                return Some(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), 32));
            }
            self.mixed = true;
        }
        let (&bits, tail) = rest.split_first()?;
        if bits > 32 {
            return None;
        }
        let stride = stride_of(bits);
        let n = stride - 1;
        // Fixed 4-octet load and mask instead of a variable-length memcpy and
        // `trunc()`; the mask also clears the host bits (RFC 4271 §4.3).
        let raw = match tail.get(..4) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
            _ => {
                let mut o = [0u8; 4];
                o[..n].copy_from_slice(tail.get(..n)?);
                u32::from_be_bytes(o)
            }
        };
        if n > tail.len() {
            return None;
        }
        self.pos += stride;
        // `bits` leading ones, without a branch (0 and 32 included).
        let mask = !((u64::from(u32::MAX) >> bits) as u32);
        Some(Ipv4Net::new_assert(Ipv4Addr::from(raw & mask), bits))
    }
}

/// `bits` leading ones for each prefix length 0..=128: one load instead of a
/// 128-bit shift with its overflow cases.
static V6_MASKS: [u128; 129] = {
    let mut m = [0u128; 129];
    let mut bits = 1;
    while bits <= 128 {
        m[bits] = u128::MAX << (128 - bits);
        bits += 1;
    }
    m
};

/// Iterator over a validated IPv6 prefix list (see [`Ipv4Prefixes`]).
#[derive(Clone, Debug, Default)]
pub struct Ipv6Prefixes {
    buf: Bytes,
    pos: usize,
    /// A 4-octet Path Identifier precedes each prefix (RFC 7911 §3).
    add_path: bool,
    /// Past the leading run of host routes (see `next_prefix`).
    mixed: bool,
}

impl Ipv6Prefixes {
    #[inline]
    fn next_prefix(&mut self) -> Option<Ipv6Net> {
        let rest = self.buf.get(self.pos..)?;
        // Leading run of /128s: as for /32 in Ipv4Prefixes::next_prefix.
        if !self.mixed {
            if let Some((&[128], addr)) = rest.get(..17).map(|p| p.split_at(1)) {
                self.pos += 17;
                let octets: [u8; 16] = addr.try_into().ok()?;
                return Some(Ipv6Net::new_assert(Ipv6Addr::from(octets), 128));
            }
            self.mixed = true;
        }
        let (&bits, tail) = rest.split_first()?;
        if bits > 128 {
            return None;
        }
        let stride = stride_of(bits);
        let n = stride - 1;
        // Fixed 16-octet load and mask (see Ipv4Prefixes::next_prefix).
        let raw = match tail.get(..16) {
            Some(t) => u128::from_be_bytes(t.try_into().ok()?),
            None => {
                let mut o = [0u8; 16];
                o[..n].copy_from_slice(tail.get(..n)?);
                u128::from_be_bytes(o)
            }
        };
        if n > tail.len() {
            return None;
        }
        self.pos += stride;
        Some(Ipv6Net::new_assert(
            Ipv6Addr::from(raw & V6_MASKS[usize::from(bits)]),
            bits,
        ))
    }
}

/// Prefixes of either family, as carried in MP_REACH_NLRI / MP_UNREACH_NLRI.
/// Families other than IPv4/IPv6 unicast yield nothing.
#[derive(Clone, Debug)]
pub enum Prefixes {
    V4(Ipv4Prefixes),
    V6(Ipv6Prefixes),
    None,
}

impl Prefixes {
    /// The next (Path Identifier, prefix); the id is 0 without ADD-PATH.
    #[inline]
    pub fn next_path(&mut self) -> Option<(u32, IpNet)> {
        match self {
            Prefixes::V4(it) => it.next_path().map(|(i, p)| (i, IpNet::V4(p))),
            Prefixes::V6(it) => it.next_path().map(|(i, p)| (i, IpNet::V6(p))),
            Prefixes::None => None,
        }
    }

    /// (Path Identifier, prefix) pairs.
    pub fn with_path_ids(mut self) -> impl Iterator<Item = (u32, IpNet)> {
        std::iter::from_fn(move || self.next_path())
    }
}

impl Iterator for Prefixes {
    type Item = IpNet;

    #[inline]
    fn next(&mut self) -> Option<IpNet> {
        match self {
            Prefixes::V4(it) => it.next().map(IpNet::V4),
            Prefixes::V6(it) => it.next().map(IpNet::V6),
            Prefixes::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_roundtrip_and_host_bits() {
        let mut b = Vec::new();
        put_v4(&mut b, "10.1.2.3/32".parse().unwrap());
        put_v4(&mut b, "10.128.0.0/9".parse().unwrap());
        put_v4(&mut b, "0.0.0.0/0".parse().unwrap());
        assert_eq!(b, [32, 10, 1, 2, 3, 9, 10, 128, 0]);
        assert_eq!(validate_v4(&b), Ok(3));
        let got: Vec<_> = Ipv4Prefixes::new(Bytes::from(b)).unwrap().collect();
        assert_eq!(
            got,
            [
                "10.1.2.3/32".parse().unwrap(),
                "10.128.0.0/9".parse().unwrap(),
                "0.0.0.0/0".parse().unwrap()
            ]
        );
        // Trailing bits beyond the length are cleared (RFC 4271 §4.3).
        let got: Vec<_> = Ipv4Prefixes::new(Bytes::from_static(&[9, 10, 255]))
            .unwrap()
            .collect();
        assert_eq!(got, ["10.128.0.0/9".parse::<Ipv4Net>().unwrap()]);
    }

    #[test]
    fn v4_invalid() {
        assert_eq!(
            validate_v4(&[33, 1, 2, 3, 4, 5]),
            Err(NlriError::BadLength(33))
        );
        assert_eq!(validate_v4(&[24, 10, 0]), Err(NlriError::Truncated));
        assert_eq!(
            validate_v4(&[32, 10, 0, 0, 1, 8]),
            Err(NlriError::Truncated)
        );
        assert_eq!(validate_v4(&[]), Ok(0));
        // The iterator stops instead of panicking on unvalidated input.
        assert_eq!(
            Ipv4Prefixes::validated(Bytes::from_static(&[24, 10])).count(),
            0
        );
    }

    /// The plain reading of RFC 4271 §4.3, one prefix at a time, stopping at
    /// the first malformed entry: what the iterators must yield.
    fn reference(buf: &[u8], max_bits: u8, add_path: bool) -> Vec<(u32, u8, u128)> {
        let (mut out, mut pos, width) = (Vec::new(), 0, usize::from(max_bits) / 8);
        loop {
            let id = if add_path {
                let Some(id) = buf.get(pos..pos + 4) else {
                    return out;
                };
                pos += 4;
                u32::from_be_bytes(id.try_into().unwrap())
            } else {
                0
            };
            let Some(&bits) = buf.get(pos) else {
                return out;
            };
            let n = usize::from(bits).div_ceil(8);
            let Some(octets) = buf.get(pos + 1..pos + 1 + n).filter(|_| bits <= max_bits) else {
                return out;
            };
            let mut full = [0u8; 16];
            full[..n].copy_from_slice(octets);
            let addr = u128::from_be_bytes(full) >> (128 - 8 * width);
            let keep = if bits == 0 {
                0
            } else {
                u128::MAX << (max_bits - bits)
            };
            out.push((id, bits, addr & keep & (u128::MAX >> (128 - 8 * width))));
            pos += 1 + n;
        }
    }

    /// Lists mixing runs of host routes (the iterators' fast path) with other
    /// lengths, set host bits, and malformed tails (over-long length,
    /// truncation): the iterators agree with `reference` on every one, with
    /// and without Path Identifiers.
    #[test]
    fn iterators_agree_with_the_plain_reading() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for case in 0..3000 {
            let v6 = case % 2 == 1;
            let add_path = case % 3 == 0;
            let max: u8 = if v6 { 128 } else { 32 };
            let mut buf = Vec::new();
            // Runs of host routes and of random lengths, in a random order.
            for _ in 0..rnd() % 4 {
                let host = rnd() % 2 == 0;
                for _ in 0..rnd() % 6 {
                    if add_path {
                        buf.extend_from_slice(&(rnd() as u32).to_be_bytes());
                    }
                    let bits = if host {
                        max
                    } else {
                        (rnd() % (u64::from(max) + 1)) as u8
                    };
                    buf.push(bits);
                    buf.extend((0..usize::from(bits).div_ceil(8)).map(|_| rnd() as u8));
                }
            }
            match rnd() % 4 {
                0 => buf.push(max + 1 + (rnd() % 3) as u8),
                1 => {
                    let cut = rnd() as usize % (buf.len() + 1);
                    buf.truncate(cut);
                }
                _ => {}
            }
            let want = reference(&buf, max, add_path);
            let valid = if v6 {
                validate_v6_as(&buf, add_path)
            } else {
                validate_v4_as(&buf, add_path)
            };
            let got: Vec<(u32, u8, u128)> = if v6 {
                Ipv6Prefixes::validated_as(Bytes::from(buf.clone()), add_path)
                    .with_path_ids()
                    .map(|(i, p)| (i, p.prefix_len(), u128::from(p.addr())))
                    .collect()
            } else {
                Ipv4Prefixes::validated_as(Bytes::from(buf.clone()), add_path)
                    .with_path_ids()
                    .map(|(i, p)| (i, p.prefix_len(), u128::from(u32::from(p.addr()))))
                    .collect()
            };
            assert_eq!(got, want, "case {case}: {buf:?}");
            if let Ok(n) = valid {
                assert_eq!(n, want.len(), "case {case}: {buf:?}");
            }
            // Without Path Identifiers the plain iterator yields the same prefixes.
            if !add_path {
                let plain = if v6 {
                    Ipv6Prefixes::validated(Bytes::from(buf.clone())).count()
                } else {
                    Ipv4Prefixes::validated(Bytes::from(buf.clone())).count()
                };
                assert_eq!(plain, want.len(), "case {case}: {buf:?}");
            }
        }
    }

    #[test]
    fn v6_roundtrip() {
        let ps: Vec<Ipv6Net> = ["fd00::1/128", "2001:db8::/32", "::/0", "fd00:1:2:2::/63"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let mut b = Vec::new();
        for p in &ps {
            put_v6(&mut b, *p);
        }
        assert_eq!(validate_v6(&b), Ok(4));
        assert_eq!(validate_v6(&[129]), Err(NlriError::BadLength(129)));
        let got: Vec<_> = Ipv6Prefixes::new(Bytes::from(b)).unwrap().collect();
        assert_eq!(got, ps);
    }
}

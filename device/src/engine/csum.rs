//! The Internet checksum (RFC 1071), built from partial sums that can be
//! combined across buffers, as smoltcp and Linux do.
//!
//! Partial sums are kept in native byte order in a `u64`: a sum of 32-bit
//! native words, which cannot overflow for any buffer under 16 GiB. Folding
//! and the byte swap to network order happen once, at the end.
//!
//! Written by hand because the hot loop must read guest memory through raw
//! pointers (never forming references to memory the guest may change).

/// Sum of the bytes at `p..p+len` as native 32-bit words; an odd tail byte
/// counts as the high-address byte of a zero-padded word.
///
/// # Safety
/// `p..p+len` must be readable for the duration of the call. The memory may be
/// changed concurrently by someone else (guest memory): it is only ever read
/// through raw pointers, and a torn value only makes a wrong checksum.
pub unsafe fn partial_raw(p: *const u8, len: usize) -> u64 {
    // Miri cannot run the AVX2 build of the loop: under Miri only the scalar
    // path is checked (the two are the same source, see `partial_avx2`).
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present; the caller's contract carries over.
        return unsafe { partial_avx2(p, len) };
    }
    // SAFETY: the caller's contract carries over.
    unsafe { partial_words(p, len) }
}

/// The same loop compiled for AVX2, where LLVM vectorizes it into widening
/// 32-to-64-bit adds.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[target_feature(enable = "avx2")]
unsafe fn partial_avx2(p: *const u8, len: usize) -> u64 {
    // SAFETY: the caller's contract carries over.
    unsafe { partial_words(p, len) }
}

#[inline(always)]
unsafe fn partial_words(p: *const u8, len: usize) -> u64 {
    let mut acc = [0u64; 8];
    let mut i = 0;
    while i + 32 <= len {
        for (k, a) in acc.iter_mut().enumerate() {
            // SAFETY: i + 4k + 4 <= len, inside the range the caller vouches for.
            *a += u64::from(unsafe { p.add(i + 4 * k).cast::<u32>().read_unaligned() });
        }
        i += 32;
    }
    let mut sum = acc.iter().sum::<u64>();
    while i + 4 <= len {
        // SAFETY: i + 4 <= len.
        sum += u64::from(unsafe { p.add(i).cast::<u32>().read_unaligned() });
        i += 4;
    }
    let mut tail = [0u8; 4];
    for (k, t) in tail.iter_mut().enumerate().take(len - i) {
        // SAFETY: i + k < len.
        *t = unsafe { p.add(i + k).read() };
    }
    sum + u64::from(u32::from_ne_bytes(tail))
}

/// Partial sum of a byte slice.
pub fn partial(data: &[u8]) -> u64 {
    // SAFETY: the slice is readable for its whole length.
    unsafe { partial_raw(data.as_ptr(), data.len()) }
}

/// Folds a partial sum to 16 bits, still in native order.
pub fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Adds `part`, a partial sum of a range that starts at stream offset
/// `offset`, to `acc` (a partial sum of a range starting at an even offset).
pub fn combine(acc: u64, part: u64, offset: usize) -> u64 {
    let f = fold(part);
    acc + u64::from(if offset % 2 == 1 { f.swap_bytes() } else { f })
}

/// The final checksum, as bytes to store in the packet.
pub fn finish(sum: u64) -> [u8; 2] {
    (!fold(sum)).to_ne_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for c in data.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            s += u32::from(w);
        }
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn matches_reference_for_all_small_lengths() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..data.len() {
            let got = u16::from_be_bytes(finish(partial(&data[..len])));
            assert_eq!(got, reference(&data[..len]), "len {len}");
        }
    }

    #[test]
    fn combine_at_odd_offsets() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 + 11) as u8).collect();
        for split in [1usize, 2, 3, 333, 998, 999] {
            let acc = partial(&data[..split]);
            let acc = combine(acc, partial(&data[split..]), split);
            assert_eq!(u16::from_be_bytes(finish(acc)), reference(&data));
        }
    }

    #[test]
    fn rfc1071_example() {
        // The example words of RFC 1071 section 3: sum 0xddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(u16::from_be_bytes(finish(partial(&d))), !0xddf2);
    }
}

//! String interning and a fast hasher for the index's small keys.
//!
//! Every name the index compares (usernames, groups, artifact names, applications, topic
//! prefixes) is interned once into a [`Sym`]; matching then compares integers. Interners are
//! layered: the immutable base one (shared behind an `Arc`) and a small one on top that
//! incremental updates add to, numbering on from where the base stops.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// An interned string.
pub(crate) type Sym = u32;

/// Stands for "the filter's owner" in owner-relative rules and keys.
pub(crate) const OWNER: Sym = u32::MAX;

/// The Firefox/rustc hash (a multiply and a rotate per word) with a final mix. Not
/// DoS-resistant, which is fine for keys from the operator's own preference table and bus.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Fx(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Fx {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // The multiply only carries entropy upwards: without mixing the high bits back down,
        // strings sharing a first word ("pkg1…") would share the table's low (bucket) bits.
        let mut h = self.0;
        h ^= h >> 32;
        h = h.wrapping_mul(0xd6e8_feb8_6659_fd93);
        h ^ (h >> 32)
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;
pub(crate) type FxSet<K> = HashSet<K, BuildHasherDefault<Fx>>;

/// Strings numbered from `first` on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interner {
    map: FxMap<Box<str>, Sym>,
    names: Vec<Box<str>>,
    first: Sym,
}

impl Interner {
    /// An empty interner numbering from `first`.
    pub(crate) fn starting_at(first: Sym) -> Self {
        Interner {
            first,
            ..Interner::default()
        }
    }

    /// The next number to be given out.
    pub(crate) fn end(&self) -> Sym {
        self.first + Sym::try_from(self.names.len()).unwrap_or(Sym::MAX - 1)
    }

    /// The strings, in number order.
    pub(crate) fn names(&self) -> &[Box<str>] {
        &self.names
    }

    pub(crate) fn get(&self, s: &str) -> Option<Sym> {
        self.map.get(s).copied()
    }

    pub(crate) fn name(&self, sym: Sym) -> Option<&str> {
        self.names
            .get(sym.checked_sub(self.first)? as usize)
            .map(|b| &**b)
    }

    pub(crate) fn intern(&mut self, s: &str) -> Sym {
        if let Some(&sym) = self.map.get(s) {
            return sym;
        }
        let sym = self.end();
        let b: Box<str> = s.into();
        self.names.push(b.clone());
        self.map.insert(b, sym);
        sym
    }

    /// Heap bytes held (approximately: table slots plus string bytes).
    pub(crate) fn heap_bytes(&self) -> usize {
        let strings: usize = self.names.iter().map(|n| 2 * n.len()).sum();
        strings
            + self.map.capacity() * (std::mem::size_of::<(Box<str>, Sym)>() + 1)
            + self.names.capacity() * std::mem::size_of::<Box<str>>()
    }
}

/// Snapshots keep the strings only; the lookup table is rebuilt on load.
impl serde::Serialize for Interner {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&(self.first, &self.names), s)
    }
}

impl<'de> serde::Deserialize<'de> for Interner {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (first, names): (Sym, Vec<Box<str>>) = serde::Deserialize::deserialize(d)?;
        let mut map = FxMap::default();
        map.reserve(names.len());
        for (sym, name) in (first..).zip(&names) {
            map.insert(name.clone(), sym);
        }
        Ok(Interner { map, names, first })
    }
}

/// A base interner (immutable, shared) with a layer on top that grows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layered<'a> {
    pub(crate) base: &'a Interner,
    pub(crate) top: &'a Interner,
}

impl<'a> Layered<'a> {
    #[inline]
    pub(crate) fn get(&self, s: &str) -> Option<Sym> {
        self.base.get(s).or_else(|| {
            if self.top.names.is_empty() {
                None
            } else {
                self.top.get(s)
            }
        })
    }

    pub(crate) fn name(&self, sym: Sym) -> &'a str {
        self.base
            .name(sym)
            .or_else(|| self.top.name(sym))
            .unwrap_or("")
    }
}

/// Interns into `top` unless `base` already has the string.
pub(crate) fn intern_layered(base: &Interner, top: &mut Interner, s: &str) -> Sym {
    match base.get(s) {
        Some(sym) => sym,
        None => top.intern(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_number_on() {
        let mut base = Interner::default();
        let a = base.intern("a");
        assert_eq!(base.intern("a"), a);
        let mut top = Interner::starting_at(base.end());
        let b = intern_layered(&base, &mut top, "b");
        assert_eq!(intern_layered(&base, &mut top, "a"), a);
        assert_ne!(a, b);
        let l = Layered {
            base: &base,
            top: &top,
        };
        assert_eq!(
            (l.get("a"), l.get("b"), l.get("c")),
            (Some(a), Some(b), None)
        );
        assert_eq!((l.name(a), l.name(b)), ("a", "b"));
    }
}

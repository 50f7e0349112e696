use crate::intern::{Interner, Sym};

use super::glob_key;

fn syms() -> impl FnMut(&str) -> Sym {
    let mut i = Interner::default();
    move |s| i.intern(s)
}

#[test]
fn glob_keys_cut_at_a_dot_or_take_a_segment() {
    let mut s = syms();
    let k = |g: &str, s: &mut dyn FnMut(&str) -> Sym| glob_key(g, s).map(|(r, _)| r);
    assert_eq!(k("org.fp.prod.bod*", &mut s), Some(4));
    assert_eq!(k("org.fp.prod.x", &mut s), Some(3));
    assert_eq!(k("*.bodhi.*", &mut s), Some(5));
    assert_eq!(k("*bodhi.*", &mut s), None);
    assert_eq!(k("org*", &mut s), None);
    assert_eq!(k("*.b[o]dhi.*", &mut s), None);
}

//! Bundles: the slices a kernel walks together (one tensor's parameters, gradients and state),
//! which the pool cuts at an element index into chunks.
//!
//! A kernel declares its bundle with [`bundle!`](crate::bundle!); the splitting is written once,
//! here, for every kind of field.

/// A bundle of equally long slices that can be cut in two at an element index.
pub trait Split: Sized + Send {
    fn len(&self) -> usize;
    fn split_at(self, mid: usize) -> (Self, Self);
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A field of a bundle: a slice, an optional slice, a list of slices of one length, or a
/// per-tensor constant.
pub trait Part: Sized {
    /// Elements, or `None` when the field holds no slice (an absent option, an empty list).
    fn elements(&self) -> Option<usize>;
    fn cut(self, mid: usize) -> (Self, Self);
}

impl<T> Part for &mut [T] {
    fn elements(&self) -> Option<usize> {
        Some(<[T]>::len(self))
    }
    fn cut(self, mid: usize) -> (Self, Self) {
        self.split_at_mut(mid)
    }
}

impl<T> Part for &[T] {
    fn elements(&self) -> Option<usize> {
        Some(<[T]>::len(self))
    }
    fn cut(self, mid: usize) -> (Self, Self) {
        self.split_at(mid)
    }
}

impl<P: Part> Part for Option<P> {
    fn elements(&self) -> Option<usize> {
        self.as_ref().and_then(P::elements)
    }
    fn cut(self, mid: usize) -> (Self, Self) {
        match self {
            Some(p) => {
                let (a, b) = p.cut(mid);
                (Some(a), Some(b))
            }
            None => (None, None),
        }
    }
}

impl<P: Part> Part for Vec<P> {
    fn elements(&self) -> Option<usize> {
        self.iter().find_map(P::elements)
    }
    fn cut(self, mid: usize) -> (Self, Self) {
        self.into_iter().map(|p| p.cut(mid)).unzip()
    }
}

/// A constant of one tensor (its trust ratio, its bias correction) carried by its bundle:
/// every chunk of the tensor gets a copy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Each<T>(pub T);

impl<T: Copy> Part for Each<T> {
    fn elements(&self) -> Option<usize> {
        None
    }
    fn cut(self, _mid: usize) -> (Self, Self) {
        (self, self)
    }
}

/// The element index at which a bundle's slices start within the whole array: a field for
/// kernels whose values depend on the position (counter-based random streams).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Index(pub u64);

impl Part for Index {
    fn elements(&self) -> Option<usize> {
        None
    }
    fn cut(self, mid: usize) -> (Self, Self) {
        (self, Index(self.0 + mid as u64))
    }
}

/// Declares a bundle struct, generic over a lifetime and element types, and implements
/// [`Split`] for it: its length is that of the first field that holds a slice.
#[macro_export]
macro_rules! bundle {
    (
        $(#[$m:meta])*
        $vis:vis struct $name:ident<$a:lifetime, $($t:ident),+> {
            $($(#[$fm:meta])* pub $f:ident: $ty:ty),+ $(,)?
        }
    ) => {
        $(#[$m])*
        $vis struct $name<$a, $($t),+> {
            $($(#[$fm])* pub $f: $ty),+
        }

        impl<$a, $($t: Send + Sync),+> $crate::runtime::bundle::Split for $name<$a, $($t),+> {
            fn len(&self) -> usize {
                None$(.or_else(|| $crate::runtime::bundle::Part::elements(&self.$f)))+.unwrap_or(0)
            }
            fn split_at(self, mid: usize) -> (Self, Self) {
                $(let $f = $crate::runtime::bundle::Part::cut(self.$f, mid);)+
                ($name { $($f: $f.0),+ }, $name { $($f: $f.1),+ })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::Split;

    crate::bundle! {
        pub struct Three<'a, T> {
            pub a: &'a mut [T],
            pub b: &'a [T],
            pub c: Option<&'a mut [T]>,
        }
    }

    #[test]
    fn every_field_is_cut_at_the_same_index() {
        let (mut a, b, mut c) = (vec![1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]);
        let t = Three {
            a: &mut a,
            b: &b,
            c: Some(&mut c),
        };
        assert_eq!(t.len(), 3);
        let (x, y) = t.split_at(1);
        assert_eq!(
            (x.a.len(), x.b, x.c.as_deref()),
            (1, &[4][..], Some(&[7][..]))
        );
        assert_eq!(
            (y.a.len(), y.b, y.c.as_deref()),
            (2, &[5, 6][..], Some(&[8, 9][..]))
        );
    }

    #[test]
    fn a_constant_goes_to_both_halves_and_sets_no_length() {
        crate::bundle! {
            pub struct Scaled<'a, T> {
                pub c: super::Each<f64>,
                pub x: &'a mut [T],
            }
        }
        let mut x = [1u8, 2, 3];
        let s = Scaled {
            c: super::Each(0.5),
            x: &mut x,
        };
        assert_eq!(s.len(), 3);
        let (a, b) = s.split_at(2);
        assert_eq!(
            (a.c, b.c, a.x.len(), b.x.len()),
            (super::Each(0.5), super::Each(0.5), 2, 1)
        );
    }

    #[test]
    fn an_absent_field_does_not_set_the_length() {
        crate::bundle! {
            pub struct Lists<'a, T> {
                pub w: Vec<&'a mut [T]>,
                pub r: Vec<&'a [T]>,
            }
        }
        let x = [1.0f32; 4];
        let l: Lists<f32> = Lists {
            w: vec![],
            r: vec![&x],
        };
        assert_eq!(l.len(), 4);
    }
}

//! Authentication: the `requirepass` password, the AUTH command (`AUTH password` and
//! `AUTH default password`, as Redis 6+ accepts them) and HELLO's AUTH option (the session
//! answers HELLO itself, `actors::session`). Which commands
//! a client may send before it has authenticated is the `NO_AUTH` flag of the command table
//! (`moodb_core::command::table`).
//!
//! The password is kept only as its SHA-256 digest, and a candidate is compared by digest in
//! constant time (`subtle`), so neither the password's length nor how many leading bytes of a
//! guess were right shows in the reply time.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use moodb_core::command::ReplyError;
use moodb_core::resp::Frame;

/// The only user there is.
pub const DEFAULT_USER: &[u8] = b"default";

/// A configured password, held as its digest.
#[derive(Clone)]
pub struct Password([u8; 32]);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<hidden>)")
    }
}

impl Password {
    pub fn new(password: &[u8]) -> Self {
        Password(Sha256::digest(password).into())
    }

    /// Whether `candidate` is the password, in time independent of both.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(candidate).into();
        digest.ct_eq(&self.0).into()
    }
}

/// `-NOAUTH Authentication required.`
pub fn noauth() -> Frame {
    ReplyError::NoAuth.into()
}

/// `-WRONGPASS ...`, Redis' text.
pub fn wrongpass() -> Frame {
    ReplyError::WrongPass.into()
}

/// What an AUTH request (`args[0]` is `AUTH`) comes to: the reply, and whether the client is
/// now authenticated.
pub fn auth(args: &[Bytes], password: Option<&Password>) -> (Frame, bool) {
    match check(args, password) {
        Ok(()) => (Frame::ok(), true),
        Err(err) => (err.into(), false),
    }
}

/// Checks `AUTH [user] password` against `password`, with Redis' errors.
fn check(args: &[Bytes], password: Option<&Password>) -> Result<(), ReplyError> {
    match args {
        [_] | [] => Err(ReplyError::WrongArity { name: "auth" }),
        // The one-word form asks for the password Redis has none of.
        [_, _] if password.is_none() => Err(ReplyError::AuthNotConfigured),
        [_, pass] => credentials(DEFAULT_USER, pass, password),
        [_, user, pass] => credentials(user, pass, password),
        _ => Err(ReplyError::Syntax),
    }
}

/// Checks `user` and `pass` (`AUTH user pass`, `HELLO ... AUTH user pass`): without a
/// password configured the default user takes any (Redis' `nopass`), and there is no other
/// user.
pub fn credentials(
    user: &[u8],
    pass: &[u8],
    password: Option<&Password>,
) -> Result<(), ReplyError> {
    let Some(password) = password else {
        return if user == DEFAULT_USER {
            Ok(())
        } else {
            Err(ReplyError::WrongPass)
        };
    };
    // Check the password even for an unknown user, so the time says nothing about the name.
    let right = password.matches(pass);
    if right && user == DEFAULT_USER {
        Ok(())
    } else {
        Err(ReplyError::WrongPass)
    }
}

/// HELLO's `AUTH user pass` option: `Ok` authenticates the connection.
pub fn hello_auth(user: &[u8], pass: &[u8], password: Option<&Password>) -> Result<(), ReplyError> {
    credentials(user, pass, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn auth_accepts_the_password_alone_or_with_the_default_user() {
        let pw = Password::new(b"s3cret");
        assert_eq!(
            auth(&b(&["AUTH", "s3cret"]), Some(&pw)),
            (Frame::ok(), true)
        );
        assert_eq!(
            auth(&b(&["auth", "default", "s3cret"]), Some(&pw)),
            (Frame::ok(), true)
        );
        assert_eq!(
            auth(&b(&["AUTH", "wrong"]), Some(&pw)),
            (wrongpass(), false)
        );
        assert_eq!(
            auth(&b(&["AUTH", "s3cre"]), Some(&pw)),
            (wrongpass(), false)
        );
        assert_eq!(
            auth(&b(&["AUTH", "admin", "s3cret"]), Some(&pw)),
            (wrongpass(), false)
        );
        assert!(!auth(&b(&["AUTH"]), Some(&pw)).1);
        let (reply, ok) = auth(&b(&["AUTH", "x"]), None);
        assert!(!ok);
        assert!(matches!(reply, Frame::Error(e) if e.contains("without any password configured")));
    }

    #[test]
    fn hello_authenticates_only_with_the_right_credentials() {
        let pw = Password::new(b"pw");
        assert_eq!(hello_auth(b"default", b"pw", Some(&pw)), Ok(()));
        assert_eq!(
            hello_auth(b"default", b"no", Some(&pw)),
            Err(ReplyError::WrongPass)
        );
        assert_eq!(
            hello_auth(b"bob", b"pw", Some(&pw)),
            Err(ReplyError::WrongPass)
        );
        // No password: the default user takes any, as Redis' `nopass` default user does.
        assert_eq!(hello_auth(b"default", b"x", None), Ok(()));
        assert_eq!(hello_auth(b"bob", b"x", None), Err(ReplyError::WrongPass));
        assert_eq!(
            auth(&b(&["AUTH", "default", "x"]), None),
            (Frame::ok(), true)
        );
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        assert!(!format!("{:?}", Password::new(b"hunter2")).contains("hunter2"));
    }
}

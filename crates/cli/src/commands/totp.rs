//! `brevet totp --uri URI`: the current code for an otpauth URI, for demos and scripts.

use serde::Serialize;

use super::Ctx;
use crate::error::Error;

#[derive(Serialize)]
struct Code {
    code: String,
    valid_for_seconds: u64,
}

pub(crate) fn run(ctx: &mut Ctx<'_>, uri: &str) -> Result<(), Error> {
    let secret = secret_of(uri)?;
    let now = u64::try_from(ctx.env.now).unwrap_or(0);
    let code = Code {
        code: brevet_identity::totp::code_at(&secret, now),
        valid_for_seconds: 30 - now % 30,
    };
    ctx.show(&code, |out, c| {
        writeln!(out, "{}", c.code)?;
        Ok(())
    })
}

fn secret_of(uri: &str) -> Result<Vec<u8>, Error> {
    let query = uri
        .strip_prefix("otpauth://totp/")
        .and_then(|rest| rest.split_once('?'))
        .map(|(_, q)| q)
        .ok_or_else(|| Error::TotpUri("it does not start with otpauth://totp/".into()))?;
    let secret = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("secret="))
        .ok_or_else(|| Error::TotpUri("it has no secret".into()))?;
    brevet_identity::totp::secret_from_base32(secret).map_err(|e| Error::TotpUri(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_secret_of_a_uri() {
        let secret = brevet_identity::totp::generate_secret();
        let uri = brevet_identity::totp::otpauth_uri(&secret, "alice", "Brevet");
        assert_eq!(secret_of(&uri).unwrap(), secret);
        assert!(secret_of("https://example.com").is_err());
        assert!(secret_of("otpauth://totp/x?issuer=y").is_err());
    }
}

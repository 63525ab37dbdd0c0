//! `brevet restore status|acknowledge`: a restore of the server's database from backup.

use std::io::Write;

use brevet_proto::api::RestoreView;
use brevet_proto::validate;

use super::Ctx;
use crate::cli::RestoreCommand;
use crate::error::Error;
use crate::output::Fields;

pub(crate) fn run(ctx: &mut Ctx<'_>, command: RestoreCommand) -> Result<(), Error> {
    let view = match command {
        RestoreCommand::Status => ctx.client()?.restore_status()?,
        RestoreCommand::Acknowledge { totp } => {
            if let Some(code) = &totp {
                validate::totp_code(code)?;
            }
            ctx.client()?.acknowledge_restore(totp.as_deref())?
        }
    };
    ctx.show(&view, fields)
}

fn fields(out: &mut dyn Write, r: &RestoreView) -> Result<(), Error> {
    let mut f = Fields::new();
    f.add("pending", r.pending.to_string())
        .add("generation", r.generation.to_string());
    if let Some(at) = &r.detected_at {
        f.add("detected_at", at);
    }
    if let Some(why) = &r.reason {
        f.add("reason", why);
    }
    f.print(out)
}

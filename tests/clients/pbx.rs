//! A running Switchboard with one provisioned business, for the call tests:
//! the directory at hand (to set things up and read CDRs) and the accounts
//! the CLI printed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use store::{CdrQuery, Directory, ExtensionNumber, TenantId};

use super::{Account, Phone, PhoneOpts, baresip_phone, provision, sip_addrs};
use crate::common::{Db, Server, block_on};

/// The business's SIP domain.
pub const DOMAIN: &str = "acme.example";

pub struct Pbx {
    pub _db: Db,
    pub server: Server,
    pub sip: SocketAddr,
    pub dir: Arc<dyn Directory>,
    pub tenant: TenantId,
    pub accounts: Vec<Account>,
}

pub fn pbx(numbers: &[&str], rtp: &str) -> Pbx {
    pbx_with(numbers, rtp, |_, _| {})
}

/// Provisions `numbers` (named "Phone N"), runs `setup` on the directory,
/// then starts the server with relay ports `rtp` (each test its own: tests
/// run in parallel; all below 32768, where Linux starts handing out
/// ephemeral ports).
pub fn pbx_with(numbers: &[&str], rtp: &str, setup: impl FnOnce(&dyn Directory, TenantId)) -> Pbx {
    pbx_with_env(numbers, rtp, &[], setup)
}

/// [`pbx_with`], the server started with `env` set too.
pub fn pbx_with_env(
    numbers: &[&str],
    rtp: &str,
    env: &[(&str, &str)],
    setup: impl FnOnce(&dyn Directory, TenantId),
) -> Pbx {
    let db = Db::sqlite();
    let accounts = provision(&db, DOMAIN, numbers);
    let dir = block_on(store::connect(&db.url)).expect("directory");
    let tenant = block_on(dir.get_tenant_by_domain(&DOMAIN.parse().unwrap()))
        .unwrap()
        .id;
    setup(&*dir, tenant);
    let mut all = vec![
        ("SWITCHBOARD_RTP_PORTS", rtp),
        ("RUST_LOG", "info,pbx=debug"),
    ];
    all.extend_from_slice(env);
    let server = Server::start(&db, &all);
    let sip = sip_addrs(&server).udp;
    Pbx {
        _db: db,
        server,
        sip,
        dir,
        tenant,
        accounts,
    }
}

impl Pbx {
    pub fn account(&self, number: &str) -> &Account {
        self.accounts
            .iter()
            .find(|a| a.user == number)
            .expect("provisioned")
    }

    /// A baresip phone for `number`, registered.
    pub fn phone(&self, number: &str, opts: PhoneOpts) -> Phone {
        let mut p = baresip_phone(self.account(number), self.sip, &opts);
        p.wait_registered();
        p
    }

    pub fn edit_extension(&self, number: &str, f: impl FnOnce(&mut store::ExtensionSettings)) {
        let n: ExtensionNumber = number.parse().unwrap();
        block_on(async {
            let ext = self
                .dir
                .get_extension_by_number(self.tenant, &n)
                .await
                .unwrap();
            let mut s = ext.settings.clone();
            f(&mut s);
            self.dir
                .update_extension(self.tenant, ext.id, &s)
                .await
                .unwrap();
        });
    }

    /// Waits (bounded) until the business has `n` CDRs; returns them,
    /// newest first.
    pub fn cdr_rows(&self, n: usize) -> Vec<store::Cdr> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let rows = block_on(self.dir.list_cdrs(self.tenant, &CdrQuery::default()))
                .unwrap()
                .items;
            if rows.len() >= n || Instant::now() > deadline {
                assert_eq!(rows.len(), n, "CDRs: {rows:#?}\n{}", self.server.log());
                return rows;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

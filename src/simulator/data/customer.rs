//! Builds the synthetic customer from a seed and a scale: an account hierarchy, each account's
//! senders, users, campaigns and templates, and one stream per combination of every dimension.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::catalogue::{
    CAMPAIGN_REFERENCES, COMPANIES, COUNTRIES, DIVISIONS, EMAIL_SENDERS, PRODUCTS, Pricing,
    Product, ROLES, Reach, SenderKind, USD_PER_EUR, category_name, round_price, subcategory_name,
};
use super::dataset::{AccountInfo, DIMS, Dataset, Stream};
use super::hashing::{hash, pick};
use super::symbols::{Atom, Interner, NA, Sym};
use crate::infobip::model::{BillingUsageAggregate as Agg, Category};
use crate::simulator::Scale;

impl Dataset {
    pub(in crate::simulator) fn generate(seed: u64, scale: Scale) -> Self {
        let mut b = Builder {
            seed,
            scale,
            atoms: Interner::default(),
            list_prices: Vec::new(),
            price_ids: HashMap::new(),
            streams: Vec::new(),
        };
        let company = COMPANIES[pick(seed, COMPANIES.len())];
        let mut accounts = Vec::with_capacity(scale.accounts);
        let mut parent_key = None;
        for index in 0..scale.accounts {
            let (info, ctx) = b.account(index, company, parent_key.as_deref());
            parent_key.get_or_insert_with(|| info.key.clone());
            accounts.push(info);
            for (i, p) in PRODUCTS.iter().enumerate() {
                if b.uses(index, p.category) && (!p.mau_plan || b.on_mau_plan(index)) {
                    b.add_product(&ctx, i as u64, p);
                }
            }
        }
        Self {
            atoms: b.atoms.atoms,
            ids: b.atoms.ids,
            accounts,
            list_prices: b.list_prices,
            streams: b.streams,
        }
    }
}

fn hex32(seed: u64, salt: u64) -> String {
    format!(
        "{:016X}{:016X}",
        hash(&[seed, salt, 1]),
        hash(&[seed, salt, 2])
    )
}

/// Builds the stream list; kept apart from `Dataset` so the interner is mutable only here.
struct Builder {
    seed: u64,
    scale: Scale,
    atoms: Interner,
    list_prices: Vec<Decimal>,
    price_ids: HashMap<Decimal, u32>,
    streams: Vec<Stream>,
}

/// What every stream of one account shares.
struct AccountCtx {
    index: usize,
    name: Sym,
    key: Sym,
    currency: Sym,
    usd: bool,
    brand: String,
    slug: String,
    size_per_mille: u64,
    discount: bool,
    cpaas_x: bool,
    users: Vec<Sym>,
    campaigns: Vec<Sym>,
    templates: Vec<Sym>,
}

impl Builder {
    fn price_id(&mut self, price: Decimal) -> u32 {
        if let Some(id) = self.price_ids.get(&price) {
            return *id;
        }
        let id = u32::try_from(self.list_prices.len()).unwrap_or(u32::MAX);
        self.list_prices.push(price);
        self.price_ids.insert(price, id);
        id
    }

    fn uses(&self, account: usize, category: Category) -> bool {
        // SMS and its US fee are everyone's; every other category is forced onto one account
        // (so all 15 appear) and otherwise drawn per account.
        let fee_base = match category {
            Category::SMS | Category::SMS_OPERATOR_FEE => return true,
            Category::MMS_OPERATOR_FEE => Category::MMS,
            c => c,
        };
        let index = Category::ALL
            .iter()
            .position(|c| *c == fee_base)
            .unwrap_or(0);
        index % self.scale.accounts == account
            || hash(&[self.seed, account as u64, index as u64, 0xCA7]) % 100 < 55
    }

    fn on_mau_plan(&self, account: usize) -> bool {
        let whatsapp = Category::ALL
            .iter()
            .position(|c| *c == Category::WHATSAPP)
            .unwrap_or(0);
        whatsapp % self.scale.accounts == account
            || hash(&[self.seed, account as u64, 0x3A0]).is_multiple_of(3)
    }

    fn account(
        &mut self,
        index: usize,
        company: &str,
        parent_key: Option<&str>,
    ) -> (AccountInfo, AccountCtx) {
        let seed = self.seed;
        let name = match index {
            0 => company.to_owned(),
            i if i <= DIVISIONS.len() => format!("{company} {}", DIVISIONS[i - 1]),
            i => format!("{company} Sub-account {i}"),
        };
        let key = hex32(seed, 0xACC0_0000 + index as u64);
        let usd = index % 2 == 1;
        let currency = if usd { "USD" } else { "EUR" };
        let brand: String = company
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(11)
            .collect();
        let slug: String = name
            .to_ascii_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        let user_brand: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
        let users = (0..self.scale.users)
            .map(|u| {
                let role = ROLES
                    .get(u)
                    .map_or_else(|| format!("USER{u}"), |r| (*r).to_owned());
                self.atoms.text(&format!("{user_brand}_{role}"))
            })
            .collect();
        let campaigns = (0..self.scale.campaigns)
            .map(|c| {
                let id = 100_000_000_000
                    + hash(&[seed, index as u64, c as u64, 0xCA3]) % 900_000_000_000;
                self.atoms
                    .intern(Atom::Int(i64::try_from(id).unwrap_or(i64::MAX)))
            })
            .collect();
        let templates = (0..self.scale.templates)
            .map(|t| {
                let id = 1_000_000_000_000_000
                    + hash(&[seed, index as u64, t as u64, 0x7E3]) % 9_000_000_000_000_000;
                self.atoms.text(&id.to_string())
            })
            .collect();
        let ctx = AccountCtx {
            index,
            name: self.atoms.text(&name),
            key: self.atoms.text(&key),
            currency: self.atoms.text(currency),
            usd,
            brand,
            slug,
            size_per_mille: if index == 0 {
                1000
            } else {
                300 + hash(&[seed, index as u64, 0x512E]) % 701
            },
            discount: hash(&[seed, index as u64, 0xD15C]).is_multiple_of(2),
            cpaas_x: index == 0 || hash(&[seed, index as u64, 0xC9A5]).is_multiple_of(2),
            users,
            campaigns,
            templates,
        };
        let info = AccountInfo {
            name,
            key,
            currency: currency.to_owned(),
            parent_key: parent_key.map(str::to_owned),
        };
        (info, ctx)
    }

    /// The senders of one account on one channel: `(sender, sender type)`.
    fn senders(&mut self, acc: &AccountCtx, kind: SenderKind) -> Vec<(Sym, Sym)> {
        let n = self.scale.senders;
        let seed = self.seed;
        let number = |s: usize, salt: u64, digits: u32| {
            hash(&[seed, acc.index as u64, s as u64, salt]) % 10u64.pow(digits)
        };
        let mut out = Vec::with_capacity(n);
        for s in 0..n {
            let (sender, kind_name) = match kind {
                SenderKind::None => return vec![(NA, NA)],
                SenderKind::Mobile => match s % 3 {
                    0 => (alpha(&acc.brand, s / 3), "ALPHANUMERIC"),
                    1 => (
                        format!("{}", 10_000 + number(s, 0x5C, 5) % 90_000),
                        "SHORT_CODE",
                    ),
                    _ => (
                        format!("1{:010}", number(s, 0x1A, 10)),
                        "VIRTUAL_LONG_NUMBER",
                    ),
                },
                SenderKind::LongNumber => (
                    format!("1{:010}", number(s, 0x1A, 10)),
                    "VIRTUAL_LONG_NUMBER",
                ),
                SenderKind::WhatsApp => (
                    format!("447{:09}", number(s, 0x3A, 9)),
                    "VIRTUAL_LONG_NUMBER",
                ),
                SenderKind::Alpha => (alpha(&acc.brand, s), "ALPHANUMERIC"),
                SenderKind::Email => {
                    let local = EMAIL_SENDERS[s % EMAIL_SENDERS.len()];
                    let n = s / EMAIL_SENDERS.len();
                    let local = if n == 0 {
                        local.to_owned()
                    } else {
                        format!("{local}{n}")
                    };
                    (format!("{local}@{}.example.com", acc.slug), "DOMAIN")
                }
            };
            out.push((self.atoms.text(&sender), self.atoms.text(kind_name)));
        }
        out
    }

    fn add_product(&mut self, acc: &AccountCtx, product_index: u64, p: &Product) {
        let seed = self.seed;
        let destinations: Vec<(Option<usize>, Option<usize>)> = match p.reach {
            Reach::Global => vec![(None, None)],
            Reach::UsOnly => (0..COUNTRIES[0].networks.len())
                .map(|n| (Some(0), Some(n)))
                .collect(),
            Reach::Countries { networks } => (0..self.scale.countries)
                .flat_map(|c| {
                    let nets = if networks {
                        COUNTRIES[c].networks.len()
                    } else {
                        1
                    };
                    (0..nets).map(move |n| (Some(c), networks.then_some(n)))
                })
                .collect(),
        };
        let senders = self.senders(acc, p.sender);
        let eur = Decimal::new(p.price.0, p.price.1);
        let category = self.atoms.text(p.category.as_str());
        let category_name = self.atoms.text(category_name(p.category));
        let (sub, sub_name) = match p.sub {
            Some(s) => (
                self.atoms.text(s.as_str()),
                self.atoms.text(subcategory_name(s)),
            ),
            None => (NA, NA),
        };
        let direction = p.direction.map_or(NA, |d| self.atoms.text(d.as_str()));
        let traffic_type = p.traffic_type.map_or(NA, |t| self.atoms.text(t));
        let unit = self.atoms.text(p.unit);
        for &(country, network) in &destinations {
            let level = country.map_or(1000, |c| match p.pricing {
                Pricing::Sms => COUNTRIES[c].sms,
                Pricing::Ott => COUNTRIES[c].ott,
                Pricing::Flat => 1000,
            });
            let mut price = round_price(eur * Decimal::new(level, 3));
            if acc.usd {
                price = round_price(price * USD_PER_EUR);
            }
            let list_price = self.price_id(price);
            // Bigger markets first: the n-th country gets 2/(n+2) of the first one's traffic.
            let country_share = country.map_or(1000, |c| 2000 / (c as u64 + 2));
            let nets = match (country, network) {
                (Some(c), Some(_)) => COUNTRIES[c].networks.len() as u64,
                _ => 1,
            };
            let mut geo = [NA; 5];
            if let Some(c) = country {
                let c = &COUNTRIES[c];
                geo[0] = self.atoms.text(c.name);
                geo[1] = self.atoms.text(c.code);
                geo[2] = self.atoms.text(c.prefix);
                if let Some(n) = network {
                    geo[3] = self.atoms.text(c.networks[n].0);
                    geo[4] = self.atoms.text(c.networks[n].1);
                }
            }
            for (s, &(sender, sender_type)) in senders.iter().enumerate() {
                let h = hash(&[
                    seed,
                    acc.index as u64,
                    product_index,
                    country.unwrap_or(99) as u64,
                    network.unwrap_or(9) as u64,
                    s as u64,
                ]);
                let mut dims = [NA; DIMS];
                let mut set = |d: Agg, v: Sym| dims[d as usize] = v;
                set(Agg::ACCOUNT_NAME, acc.name);
                set(Agg::ACCOUNT_KEY, acc.key);
                set(Agg::CATEGORY_CODE, category);
                set(Agg::CATEGORY_NAME, category_name);
                set(Agg::SUBCATEGORY_CODE, sub);
                set(Agg::SUBCATEGORY_NAME, sub_name);
                set(Agg::DIRECTION, direction);
                set(Agg::TRAFFIC_TYPE, traffic_type);
                set(Agg::SENDER, sender);
                set(Agg::SENDER_TYPE, sender_type);
                set(Agg::COUNTRY_NAME, geo[0]);
                set(Agg::COUNTRY_CODE, geo[1]);
                set(Agg::COUNTRY_PREFIX, geo[2]);
                set(Agg::NETWORK_NAME, geo[3]);
                set(Agg::NORM_NET_CODE, geo[4]);
                // Who sent it decides the campaign cells: Broadcast and Flow traffic carries a
                // campaign id, API traffic often a campaign reference.
                let user = if p.messaging {
                    pick(h, acc.users.len())
                } else {
                    0
                };
                set(Agg::USER_NAME, acc.users[user]);
                if p.messaging {
                    match ROLES.get(user).copied() {
                        Some("BROADCAST" | "FLOW") => {
                            set(
                                Agg::CAMPAIGN_ID,
                                acc.campaigns[pick(h >> 8, acc.campaigns.len())],
                            );
                        }
                        Some("API") if (h >> 16) % 10 < 6 => {
                            let r = CAMPAIGN_REFERENCES[pick(h >> 20, CAMPAIGN_REFERENCES.len())];
                            set(Agg::CAMPAIGN_REFERENCE, self.atoms.text(r));
                        }
                        _ => {}
                    }
                    if acc.cpaas_x && (h >> 24) % 10 < 5 {
                        let app = format!("{}-app-{}", acc.slug, 1 + (h >> 28) % 2);
                        let entity = format!("{}-entity-{}", acc.slug, 1 + (h >> 30) % 2);
                        set(Agg::APPLICATION_ID, self.atoms.text(&app));
                        set(Agg::ENTITY_ID, self.atoms.text(&entity));
                    }
                }
                if p.template {
                    set(
                        Agg::TEMPLATE_ID,
                        acc.templates[pick(h >> 32, acc.templates.len())],
                    );
                }
                let volume_milli = p.volume * acc.size_per_mille * country_share
                    / 1000
                    / (nets * senders.len() as u64)
                    * (600 + (h >> 36) % 801)
                    / 1000;
                self.streams.push(Stream {
                    id: h,
                    dims,
                    unit,
                    currency: acc.currency,
                    list_price,
                    discount: acc.discount,
                    volume_milli,
                    weekend_per_mille: p.weekend_per_mille,
                    late_per_mille: hash(&[h, 0x1A7E]) % 60,
                });
            }
        }
    }
}

/// An alphanumeric sender id: at most 11 characters.
fn alpha(brand: &str, n: usize) -> String {
    if n == 0 {
        brand.to_owned()
    } else {
        let head: String = brand.chars().take(9).collect();
        format!("{head}{}", n + 1)
    }
}

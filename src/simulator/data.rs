//! The synthetic customer and the query engine.
//!
//! The customer is a list of traffic *streams*: one per combination of every dimension (account,
//! channel, traffic type, country, network, sender, …). A stream's units on a day are a pure
//! function of (seed, stream, day) and of how far that day's processing has gone at `now`
//! (late records, retroactive discounts, price corrections), frozen once the month is final
//! (reference §6, A21). A query filters the streams, groups them by the requested dimensions plus
//! unit type, unit price and currency (so `TOTAL_PER_UNIT = UNIT_PRICE × QUANTITY` holds per row,
//! A17), and sums the units.

use std::collections::HashMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use time::{Date, Duration, OffsetDateTime, UtcOffset, Weekday};

use super::{DateTimeFormat, OutOfWindow, Scale, SimulatorOptions};
use crate::billing::calendar::{DayRange, YearMonth, retention_start};
use crate::billing::labels::NOT_APPLICABLE;
use crate::infobip::model::{
    AggregateDataResponse, BillingUsageAggregate as Agg, BillingUsageMetadata,
    BillingUsageMetadataPeriod, BillingUsageResult, Category, Cell, ColumnDataType, ColumnInfo,
    DateInterval, DateTimeInterval, Direction, QueryAggregateDataStatus,
    QueryBillingUsageApiRequest, SubCategory,
};

pub const MAX_ACCOUNTS: usize = 10_000;
pub const MAX_COUNTRIES: usize = COUNTRIES.len();
pub const MAX_SENDERS: usize = 100;

/// Places of `TOTAL_PER_UNIT` (A17).
const TOTAL_PLACES: u32 = 2;
/// Places of `UNIT_PRICE`.
const PRICE_PLACES: u32 = 4;
/// Revision a day reaches when its month is final; below it the day is provisional.
const FINAL_REVISION: u64 = 6;
/// Ages after a day's end at which a new batch of late records lands (revisions 2..=5).
const LATE_STEPS_HOURS: [i64; 4] = [2, 12, 36, 168];
/// A mispriced day is corrected at this revision (12 h after the day ends).
const PRICE_FIX_REVISION: u64 = 3;
/// Per-mille of stream-days first billed at a wrong price.
const MISPRICED_PER_MILLE: u64 = 30;
/// Days of the month from which an eligible account's retroactive volume discount grows by 1 %.
const DISCOUNT_DAYS: [u8; 2] = [11, 21];
/// USD list prices are the EUR ones times this.
const USD_PER_EUR: Decimal = Decimal::from_parts(108, 0, 0, false, 2);

const DIMS: usize = Agg::ALL.len();

/// An interned dimension value.
type Sym = u32;
/// "This dimension does not apply to the stream": the cell is `"N/A"`.
const NA: Sym = Sym::MAX;
/// A filter value the dataset never had: no stream carries it, so it matches nothing.
const UNKNOWN: Sym = Sym::MAX - 1;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Atom {
    Text(Box<str>),
    Int(i64),
}

#[derive(Default)]
struct Interner {
    atoms: Vec<Atom>,
    ids: HashMap<Atom, Sym>,
}

impl Interner {
    fn intern(&mut self, atom: Atom) -> Sym {
        if let Some(id) = self.ids.get(&atom) {
            return *id;
        }
        let id = Sym::try_from(self.atoms.len()).unwrap_or(NA);
        self.atoms.push(atom.clone());
        self.ids.insert(atom, id);
        id
    }

    fn text(&mut self, s: &str) -> Sym {
        self.intern(Atom::Text(s.into()))
    }
}

/// SplitMix64's finalizer: a stable mix (std's hashers promise no stability across releases).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(super) fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x0B11_1000, |h, p| mix(h ^ p))
}

/// An index in `0..len` from hash bits.
fn pick(h: u64, len: usize) -> usize {
    (h % len.max(1) as u64) as usize
}

/// A uniform draw in `[0, 1)` from a hash, for ratio decisions (never money).
pub(super) fn unit_interval(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[derive(Clone, Copy)]
enum Reach {
    /// Per destination country, optionally per mobile network.
    Countries { networks: bool },
    /// US carrier surcharges.
    UsOnly,
    /// No country (e-mail, push, AI, …): country and network cells are `N/A`.
    Global,
}

#[derive(Clone, Copy, PartialEq)]
enum SenderKind {
    /// Alphanumeric, short code and long number in turn.
    Mobile,
    /// Long numbers only (two-way SMS).
    LongNumber,
    WhatsApp,
    Alpha,
    Email,
    None,
}

#[derive(Clone, Copy)]
enum Pricing {
    /// Scaled by the country's SMS price level.
    Sms,
    /// Scaled by the country's OTT (WhatsApp, Viber, RCS) price level.
    Ott,
    Flat,
}

/// One billable product: a category with its traffic type, unit and list price.
struct Product {
    category: Category,
    sub: Option<SubCategory>,
    traffic_type: Option<&'static str>,
    direction: Option<Direction>,
    unit: &'static str,
    /// EUR list price, `(mantissa, scale)`.
    price: (i64, u32),
    pricing: Pricing,
    /// Weekday units per day for a full-size account, before country and sender shares.
    volume: u64,
    /// Weekend units relative to a weekday.
    weekend_per_mille: u64,
    reach: Reach,
    sender: SenderKind,
    /// Template-based (WhatsApp): carries a TEMPLATE_ID.
    template: bool,
    /// Sent messages: may carry campaign ids, references and CPaaS X application/entity.
    messaging: bool,
    /// Only on a WhatsApp MAU plan (overage rows, reference §7).
    mau_plan: bool,
}

const fn product(
    category: Category,
    traffic_type: Option<&'static str>,
    unit: &'static str,
) -> Product {
    Product {
        category,
        sub: None,
        traffic_type,
        direction: Some(Direction::OUTBOUND),
        unit,
        price: (10, 4),
        pricing: Pricing::Flat,
        volume: 1000,
        weekend_per_mille: 500,
        reach: Reach::Global,
        sender: SenderKind::None,
        template: false,
        messaging: true,
        mau_plan: false,
    }
}

const MOBILE: Reach = Reach::Countries { networks: true };
const OTT: Reach = Reach::Countries { networks: false };

/// Not a service a user sends: no direction, sender or campaign.
const fn lookup(mut p: Product) -> Product {
    p.direction = None;
    p.messaging = false;
    p
}

#[rustfmt::skip]
const PRODUCTS: [Product; 24] = [
    Product { price: (75, 4), pricing: Pricing::Sms, volume: 6000, reach: MOBILE, sender: SenderKind::Mobile, ..product(Category::SMS, Some("A2P"), "message part") },
    Product { direction: Some(Direction::INBOUND), price: (10, 4), pricing: Pricing::Sms, volume: 300, weekend_per_mille: 700, reach: MOBILE, sender: SenderKind::LongNumber, messaging: false, ..product(Category::SMS, Some("P2A"), "message part") },
    Product { price: (30, 4), volume: 3000, reach: Reach::UsOnly, sender: SenderKind::Mobile, ..product(Category::SMS_OPERATOR_FEE, Some("A2P"), "message part") },
    Product { price: (200, 4), pricing: Pricing::Sms, volume: 300, reach: MOBILE, sender: SenderKind::Mobile, ..product(Category::MMS, Some("A2P"), "message") },
    Product { price: (50, 4), volume: 200, reach: Reach::UsOnly, sender: SenderKind::Mobile, ..product(Category::MMS_OPERATOR_FEE, Some("A2P"), "message") },
    Product { price: (8, 4), volume: 15000, weekend_per_mille: 800, sender: SenderKind::Email, ..product(Category::EMAIL, Some("TRANSACTIONAL"), "message") },
    Product { price: (6, 4), volume: 25000, weekend_per_mille: 300, sender: SenderKind::Email, ..product(Category::EMAIL, Some("MARKETING"), "message") },
    Product { price: (244, 4), pricing: Pricing::Ott, volume: 800, reach: MOBILE, sender: SenderKind::Alpha, ..product(Category::RCS, Some("RICH"), "message") },
    Product { price: (120, 4), pricing: Pricing::Ott, volume: 400, reach: MOBILE, sender: SenderKind::Alpha, ..product(Category::RCS, Some("BASIC"), "session") },
    Product { price: (512, 4), pricing: Pricing::Ott, volume: 700, weekend_per_mille: 400, reach: OTT, sender: SenderKind::WhatsApp, template: true, ..product(Category::WHATSAPP, Some("MARKETING"), "message") },
    Product { price: (81, 4), pricing: Pricing::Ott, volume: 1200, weekend_per_mille: 700, reach: OTT, sender: SenderKind::WhatsApp, template: true, ..product(Category::WHATSAPP, Some("UTILITY"), "message") },
    Product { price: (300, 4), pricing: Pricing::Ott, volume: 900, weekend_per_mille: 850, reach: OTT, sender: SenderKind::WhatsApp, template: true, ..product(Category::WHATSAPP, Some("AUTHENTICATION"), "message") },
    Product { direction: Some(Direction::INBOUND), price: (40, 4), pricing: Pricing::Ott, volume: 500, weekend_per_mille: 900, reach: OTT, sender: SenderKind::WhatsApp, messaging: false, ..product(Category::WHATSAPP, Some("SERVICE"), "message") },
    Product { direction: None, price: (200, 4), volume: 40, weekend_per_mille: 900, sender: SenderKind::WhatsApp, messaging: false, mau_plan: true, ..product(Category::WHATSAPP, None, "monthly active user") },
    Product { sub: Some(SubCategory::VIBER_BM), price: (150, 4), pricing: Pricing::Ott, volume: 500, reach: OTT, sender: SenderKind::Alpha, ..product(Category::VIBER, Some("PROMOTIONAL"), "message") },
    Product { sub: Some(SubCategory::VIBER_BM), price: (100, 4), pricing: Pricing::Ott, volume: 700, weekend_per_mille: 700, reach: OTT, sender: SenderKind::Alpha, ..product(Category::VIBER, Some("TRANSACTIONAL"), "message") },
    Product { sub: Some(SubCategory::VIBER_BOTS), direction: Some(Direction::INBOUND), price: (80, 4), pricing: Pricing::Ott, volume: 300, weekend_per_mille: 800, reach: OTT, sender: SenderKind::Alpha, messaging: false, ..product(Category::VIBER, Some("CHATBOT"), "session") },
    Product { price: (10, 4), volume: 200, weekend_per_mille: 800, ..product(Category::APPLE_MB, None, "message") },
    Product { price: (2, 4), volume: 30000, weekend_per_mille: 950, ..product(Category::MOBILE_PUSH, None, "message") },
    lookup(Product { price: (40, 4), pricing: Pricing::Sms, volume: 1500, weekend_per_mille: 600, reach: MOBILE, ..product(Category::NUMBER_LOOKUP, None, "lookup") }),
    lookup(Product { price: (20, 4), volume: 800, weekend_per_mille: 600, reach: MOBILE, ..product(Category::CARRIER_LOOKUP, None, "lookup") }),
    lookup(Product { price: (30, 4), volume: 600, weekend_per_mille: 400, ..product(Category::EMAIL_VALIDATION, None, "validation") }),
    lookup(Product { price: (500, 4), volume: 120, weekend_per_mille: 700, ..product(Category::AGENTOS, None, "session") }),
    lookup(Product { price: (20, 4), volume: 2500, weekend_per_mille: 700, ..product(Category::AI, None, "request") }),
];

struct Country {
    code: &'static str,
    name: &'static str,
    prefix: &'static str,
    /// Price level against the US, per mille, for SMS-priced and OTT-priced products.
    sms: i64,
    ott: i64,
    networks: &'static [(&'static str, &'static str)],
}

const fn country(
    code: &'static str,
    name: &'static str,
    prefix: &'static str,
    sms: i64,
    ott: i64,
    networks: &'static [(&'static str, &'static str)],
) -> Country {
    Country {
        code,
        name,
        prefix,
        sms,
        ott,
        networks,
    }
}

#[rustfmt::skip]
const COUNTRIES: [Country; 20] = [
    country("US", "United States", "1", 1000, 1000, &[("AT&T", "310410"), ("T-Mobile USA", "310260"), ("Verizon Wireless", "311480")]),
    country("DE", "Germany", "49", 9000, 2500, &[("Telekom", "26201"), ("Vodafone", "26202"), ("O2", "26203")]),
    country("GB", "United Kingdom", "44", 4600, 1400, &[("EE", "23430"), ("Vodafone UK", "23415"), ("O2 UK", "23410")]),
    country("IN", "India", "91", 400, 300, &[("Airtel", "40410"), ("Jio", "405857"), ("Vi India", "40420")]),
    country("FR", "France", "33", 8700, 2700, &[("Orange", "20801"), ("SFR", "20810"), ("Bouygues Telecom", "20820")]),
    country("BR", "Brazil", "55", 3300, 1200, &[("Vivo", "72406"), ("Claro", "72405"), ("TIM", "72402")]),
    country("HR", "Croatia", "385", 6400, 1800, &[("Hrvatski Telekom", "21901"), ("A1 Hrvatska", "21910")]),
    country("ES", "Spain", "34", 8000, 1500, &[("Movistar", "21407"), ("Vodafone ES", "21401"), ("Orange ES", "21403")]),
    country("IT", "Italy", "39", 8900, 1700, &[("TIM Italia", "22201"), ("Vodafone IT", "22210"), ("WindTre", "22288")]),
    country("NG", "Nigeria", "234", 4000, 700, &[("MTN Nigeria", "62130"), ("Airtel Nigeria", "62120")]),
    country("ID", "Indonesia", "62", 3500, 800, &[("Telkomsel", "51010"), ("Indosat", "51001")]),
    country("MX", "Mexico", "52", 2500, 1100, &[("Telcel", "334020"), ("AT&T Mexico", "334050")]),
    country("ZA", "South Africa", "27", 2300, 800, &[("Vodacom", "65501"), ("MTN South Africa", "65510")]),
    country("AE", "United Arab Emirates", "971", 3800, 900, &[("Etisalat", "42402"), ("du", "42403")]),
    country("PL", "Poland", "48", 2700, 1300, &[("Orange Polska", "26003"), ("Play", "26006")]),
    country("NL", "Netherlands", "31", 9000, 2800, &[("KPN", "20408"), ("VodafoneZiggo", "20404")]),
    country("TR", "Turkey", "90", 1200, 250, &[("Turkcell", "28601"), ("Vodafone TR", "28602")]),
    country("PH", "Philippines", "63", 2400, 300, &[("Globe", "51502"), ("Smart", "51503")]),
    country("KE", "Kenya", "254", 2000, 500, &[("Safaricom", "63902"), ("Airtel Kenya", "63903")]),
    country("AR", "Argentina", "54", 3700, 1200, &[("Claro AR", "722310"), ("Movistar AR", "72207")]),
];

const COMPANIES: [&str; 8] = [
    "Acme Retail",
    "Globex",
    "Initech",
    "Umbrella Health",
    "Stark Logistics",
    "Wayne Finance",
    "Hooli",
    "Vandelay Imports",
];
const DIVISIONS: [&str; 8] = [
    "Marketing",
    "Support",
    "Payments",
    "Notifications",
    "EU",
    "US",
    "APAC",
    "Onboarding",
];
const ROLES: [&str; 4] = ["API", "BROADCAST", "FLOW", "PORTAL"];
const CAMPAIGN_REFERENCES: [&str; 6] = [
    "otp-login",
    "order-updates",
    "spring-sale-2026",
    "newsletter",
    "appointment-reminders",
    "cart-recovery",
];
const EMAIL_SENDERS: [&str; 4] = ["notifications", "news", "billing", "hello"];

fn category_name(c: Category) -> &'static str {
    match c {
        Category::SMS => "SMS",
        Category::SMS_OPERATOR_FEE => "SMS – Operator Fee",
        Category::MMS => "MMS",
        Category::MMS_OPERATOR_FEE => "MMS – Operator Fee",
        Category::EMAIL => "Email",
        Category::RCS => "RCS",
        Category::WHATSAPP => "WhatsApp",
        Category::VIBER => "Viber",
        Category::APPLE_MB => "Apple Messages for Business",
        Category::MOBILE_PUSH => "Mobile Push",
        Category::NUMBER_LOOKUP => "Number Lookup",
        Category::CARRIER_LOOKUP => "Carrier Lookup",
        Category::EMAIL_VALIDATION => "Email Validation",
        Category::AGENTOS => "AgentOS",
        Category::AI => "AI",
    }
}

fn subcategory_name(s: SubCategory) -> &'static str {
    match s {
        SubCategory::VIBER_BM => "Viber BM",
        SubCategory::VIBER_BOTS => "Viber Bots",
    }
}

/// One account of the simulated hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub name: String,
    /// 32 uppercase hex characters, like Infobip's hashed account ids.
    pub key: String,
    /// The account bills in this currency only.
    pub currency: String,
    /// The parent has none; sub-accounts name the parent's key.
    pub parent_key: Option<String>,
}

/// A combination of every dimension, with what it costs and how much it sends.
struct Stream {
    /// Stable identity from the stream's own coordinates, so its figures do not depend on
    /// what else the scale adds.
    id: u64,
    dims: [Sym; DIMS],
    unit: Sym,
    currency: Sym,
    /// Index into `Dataset::list_prices`.
    list_price: u32,
    /// Whether the account earns the retroactive volume discount.
    discount: bool,
    /// Weekday units per day, in thousandths.
    volume_milli: u64,
    weekend_per_mille: u64,
    /// Share of a day's units that arrive late, per mille.
    late_per_mille: u64,
}

pub(super) struct Dataset {
    atoms: Vec<Atom>,
    ids: HashMap<Atom, Sym>,
    accounts: Vec<AccountInfo>,
    list_prices: Vec<Decimal>,
    streams: Vec<Stream>,
}

fn round_price(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(PRICE_PLACES, RoundingStrategy::MidpointAwayFromZero)
        .max(Decimal::new(1, PRICE_PLACES))
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
            || hash(&[self.seed, account as u64, 0x3A0]) % 3 == 0
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
            discount: hash(&[seed, index as u64, 0xD15C]) % 2 == 0,
            cpaas_x: index == 0 || hash(&[seed, index as u64, 0xC9A5]) % 2 == 0,
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

/// How far a day's data has been processed at `now`: 0 while the day runs, 1..=5 as late records
/// land, [`FINAL_REVISION`] once its month is final. Never moves after finalization.
fn revision(day: Date, now: OffsetDateTime) -> u64 {
    if now >= YearMonth::of(day).expected_final_at() {
        return FINAL_REVISION;
    }
    let closed = day.next_day().unwrap_or(day).midnight().assume_utc();
    if now < closed {
        return 0;
    }
    let age = now - closed;
    1 + LATE_STEPS_HOURS
        .iter()
        .filter(|h| age >= Duration::hours(**h))
        .count() as u64
}

/// Retroactive volume discount of a month, in percent, for eligible accounts: it grows as the
/// month's volume accrues and is settled when the month is final.
fn discount_percent(month: YearMonth, now: OffsetDateTime) -> i64 {
    if now >= month.expected_final_at() {
        return DISCOUNT_DAYS.len() as i64 + 2;
    }
    let first = month.first_day();
    let passed = DISCOUNT_DAYS
        .iter()
        .filter(|d| {
            now >= first
                .replace_day(**d)
                .unwrap_or(first)
                .midnight()
                .assume_utc()
        })
        .count();
    let ended = usize::from(now >= month.end_exclusive().midnight().assume_utc());
    (passed + ended) as i64
}

/// The period a result covers: inside retention, widened to whole months for MONTH (A4), and
/// cut at the first provisional month when only final data is wanted.
fn effective_period(request: &QueryBillingUsageApiRequest, now: OffsetDateTime) -> DayRange {
    let today = now.date();
    let interval = request.filter_by.date_interval;
    let current = YearMonth::of(today);
    let mut since = interval.sent_since.max(retention_start(today));
    let mut until = interval.sent_until.min(current.end_exclusive());
    if time_column(&request.aggregate_by) == Some(Agg::MONTH) && since < until {
        since = YearMonth::of(since).first_day();
        let last = until.previous_day().unwrap_or(until);
        until = YearMonth::of(last).end_exclusive();
    }
    if request.options.is_some_and(|o| !o.include_unfinalized_data) {
        let mut month = YearMonth::of(since);
        while month.first_day() < until {
            if now < month.expected_final_at() {
                until = until.min(month.first_day().max(since));
                break;
            }
            month = month.next();
        }
    }
    DayRange {
        since,
        until: until.max(since),
    }
}

/// One entry per calendar month overlapping the period (A19).
fn billing_periods(period: DayRange, now: OffsetDateTime) -> Vec<BillingUsageMetadataPeriod> {
    let mut out = Vec::new();
    let mut month = YearMonth::of(period.since);
    while !period.is_empty() && month.first_day() < period.until {
        out.push(BillingUsageMetadataPeriod::new(
            month,
            now >= month.expected_final_at(),
        ));
        month = month.next();
    }
    out
}

/// The time column of a request: with `DAY` and `MONTH` both asked (allowed by
/// `--allow-day-and-month`), only the finer `DAY`, as the Metrics API does (reference A11).
fn time_column(aggregate_by: &[Agg]) -> Option<Agg> {
    [Agg::DAY, Agg::MONTH]
        .into_iter()
        .find(|t| aggregate_by.contains(t))
}

/// Whether the dates stay inside the retention window at `today` (reference §3.4).
fn inside_window(interval: DateInterval, today: Date) -> bool {
    interval.sent_since >= retention_start(today)
        && interval.sent_until <= YearMonth::of(today).end_exclusive()
}

/// The columns a request gets, in order (reference §5.1, A10).
fn dimension_columns(aggregate_by: &[Agg]) -> Vec<Agg> {
    let mut dims = Vec::with_capacity(aggregate_by.len() + 2);
    if !aggregate_by
        .iter()
        .any(|a| matches!(a, Agg::ACCOUNT_NAME | Agg::ACCOUNT_KEY))
    {
        dims.push(Agg::ACCOUNT_NAME);
    }
    if !aggregate_by
        .iter()
        .any(|a| matches!(a, Agg::CATEGORY_CODE | Agg::CATEGORY_NAME))
    {
        dims.push(Agg::CATEGORY_CODE);
    }
    let time = time_column(aggregate_by);
    for a in aggregate_by {
        let dropped_time = matches!(a, Agg::DAY | Agg::MONTH) && Some(*a) != time;
        if !dims.contains(a) && !dropped_time {
            dims.push(*a);
        }
    }
    dims
}

fn column_type(d: Agg) -> ColumnDataType {
    match d {
        Agg::DAY | Agg::MONTH => ColumnDataType::DateTime,
        Agg::CAMPAIGN_ID => ColumnDataType::Integer,
        _ => ColumnDataType::String,
    }
}

#[derive(Clone, Copy)]
enum Source {
    Time,
    /// Position in a group's values.
    Dim(usize),
    Unit,
    Price,
    Quantity,
    Total,
    Currency,
}

struct Row {
    bucket: u32,
    group: u32,
    price: u32,
    quantity: u64,
}

/// One query's answer, compact: rows point into groups, buckets and prices.
pub(super) struct Table<'a> {
    data: &'a Dataset,
    requested_period: DayRange,
    client_period: DayRange,
    billing_periods: Vec<BillingUsageMetadataPeriod>,
    columns: Vec<ColumnInfo>,
    sources: Vec<Source>,
    buckets: Vec<String>,
    /// Per group: its dimension values, then unit and currency.
    group_width: usize,
    group_values: Vec<Sym>,
    prices: Vec<Decimal>,
    /// `prices` as JSON number text, rendered once rather than per row.
    price_cells: Vec<Box<RawValue>>,
    rows: Vec<Row>,
}

/// A cell before it becomes JSON or a [`Cell`].
enum CellRef<'t> {
    Text(&'t str),
    Int(i64),
    Count(u64),
    Price(Decimal, &'t RawValue),
    Decimal(Decimal),
    NotApplicable,
}

impl Dataset {
    pub(super) fn generate(seed: u64, scale: Scale) -> Self {
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

    pub(super) fn accounts(&self) -> Vec<AccountInfo> {
        self.accounts.clone()
    }

    /// Units of stream `s` on `day` as seen at revision `r`, before the running-day cut.
    fn units(stream: &Stream, day: Date, r: u64, h: u64) -> u64 {
        let weekend = matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday);
        let shape = if weekend {
            stream.weekend_per_mille
        } else {
            1000
        };
        let noise = 700 + h % 601;
        let milli = stream.volume_milli * shape / 1000 * noise / 1000;
        // Stochastic rounding keeps small streams alive on average.
        let full = milli / 1000 + u64::from((h >> 20) % 1000 < milli % 1000);
        let missing = full * stream.late_per_mille * (FINAL_REVISION - r) / (FINAL_REVISION * 1000);
        full - missing
    }

    /// Runs one request at `now`, shaped by the options' §14 choices (A3, A5).
    pub(super) fn query(
        &self,
        request: &QueryBillingUsageApiRequest,
        now: OffsetDateTime,
        opts: &SimulatorOptions,
    ) -> Table<'_> {
        let now = now.to_offset(UtcOffset::UTC);
        let today = now.date();
        let interval = request.filter_by.date_interval;
        let client_period = DayRange {
            since: interval.sent_since,
            until: interval.sent_until,
        };
        // `--out-of-window empty`: a query reaching outside retention finds nothing at all, and
        // says it covered what was asked.
        let nothing = opts.out_of_window == OutOfWindow::Empty && !inside_window(interval, today);
        let period = if nothing {
            client_period
        } else {
            effective_period(request, now)
        };
        let billing_periods = billing_periods(period, now);

        let dims = dimension_columns(&request.aggregate_by);
        let mut columns = Vec::with_capacity(dims.len() + 5);
        let mut sources = Vec::with_capacity(dims.len() + 5);
        let mut grouped = Vec::new();
        for d in &dims {
            columns.push(ColumnInfo::new(d.as_str(), column_type(*d)));
            if matches!(d, Agg::DAY | Agg::MONTH) {
                sources.push(Source::Time);
            } else {
                sources.push(Source::Dim(grouped.len()));
                grouped.push(*d as usize);
            }
        }
        for (name, data_type, source) in [
            ("UNIT_TYPE", ColumnDataType::String, Source::Unit),
            ("UNIT_PRICE", ColumnDataType::Number, Source::Price),
            ("QUANTITY", ColumnDataType::Number, Source::Quantity),
            ("TOTAL_PER_UNIT", ColumnDataType::Number, Source::Total),
            ("CURRENCY", ColumnDataType::String, Source::Currency),
        ] {
            columns.push(ColumnInfo::new(name, data_type));
            sources.push(source);
        }

        // Streams passing every filter, each mapped to its output group.
        let filter = Filter::new(self, request);
        let group_width = grouped.len() + 2;
        let mut group_ids: HashMap<Vec<Sym>, u32> = HashMap::new();
        let mut group_values = Vec::new();
        let mut active: Vec<(&Stream, u32)> = Vec::new();
        let mut key = Vec::with_capacity(group_width);
        for stream in &self.streams {
            if !filter.matches(stream) {
                continue;
            }
            key.clear();
            key.extend(grouped.iter().map(|d| stream.dims[*d]));
            key.push(stream.unit);
            key.push(stream.currency);
            let next = u32::try_from(group_ids.len()).unwrap_or(u32::MAX);
            let group = *group_ids.entry(key.clone()).or_insert_with(|| {
                group_values.extend_from_slice(&key);
                next
            });
            active.push((stream, group));
        }
        let group_count = group_ids.len();
        drop(group_ids);

        // Time buckets: one per day, per month, or one for the whole period.
        let data_days = DayRange {
            since: period.since,
            until: if nothing {
                period.since
            } else {
                period.until.min(today.next_day().unwrap_or(today))
            },
        };
        let time = time_column(&request.aggregate_by);
        let mut buckets: Vec<(String, Vec<Date>)> = Vec::new();
        for day in data_days.days() {
            let label = match time {
                Some(Agg::DAY) => format_bucket(day, opts.datetime_format),
                Some(_) => format_bucket(YearMonth::of(day).first_day(), opts.datetime_format),
                None => String::new(),
            };
            match buckets.last_mut() {
                Some((l, days)) if *l == label => days.push(day),
                _ => buckets.push((label, vec![day])),
            }
        }

        // Prices: per month, each list price with the month's discount, and its mispriced twin.
        let mut prices: Vec<Decimal> = Vec::new();
        let mut price_ids: HashMap<Decimal, u32> = HashMap::new();
        let mut intern_price = |p: Decimal| {
            let next = u32::try_from(prices.len()).unwrap_or(u32::MAX);
            *price_ids.entry(p).or_insert_with(|| {
                prices.push(p);
                next
            })
        };
        let mut month_prices: HashMap<YearMonth, Vec<[u32; 2]>> = HashMap::new();
        for day in data_days.days() {
            let month = YearMonth::of(day);
            if month_prices.contains_key(&month) {
                continue;
            }
            let percent = discount_percent(month, now);
            let mut table = Vec::with_capacity(self.list_prices.len() * 2);
            for list in &self.list_prices {
                for discounted in [false, true] {
                    let off = if discounted { percent } else { 0 };
                    let normal = round_price(*list * Decimal::new(100 - off, 2));
                    let wrong = round_price(normal * Decimal::new(105, 2));
                    table.push([intern_price(normal), intern_price(wrong)]);
                }
            }
            month_prices.insert(month, table);
        }

        let mut rows = Vec::new();
        let mut acc: Vec<Vec<(u32, u64)>> = vec![Vec::new(); group_count];
        let day_seconds = 86_400u64;
        for (bucket, (_, days)) in buckets.iter().enumerate() {
            for &day in days {
                let r = revision(day, now);
                let elapsed = if day == today {
                    u64::try_from((now - today.midnight().assume_utc()).whole_seconds())
                        .unwrap_or(0)
                } else {
                    day_seconds
                };
                let Some(table) = month_prices.get(&YearMonth::of(day)) else {
                    continue;
                };
                let julian = u64::from(day.to_julian_day().unsigned_abs());
                for &(stream, group) in &active {
                    let h = hash(&[stream.id, julian]);
                    let mut units = Self::units(stream, day, r, h);
                    if elapsed < day_seconds {
                        units = units * elapsed / day_seconds;
                    }
                    if units == 0 {
                        continue;
                    }
                    let mispriced =
                        r < PRICE_FIX_REVISION && (h >> 40) % 1000 < MISPRICED_PER_MILLE;
                    let pair = table[stream.list_price as usize * 2 + usize::from(stream.discount)];
                    let price = pair[usize::from(mispriced)];
                    let cell = &mut acc[group as usize];
                    match cell.iter_mut().find(|(p, _)| *p == price) {
                        Some((_, q)) => *q += units,
                        None => cell.push((price, units)),
                    }
                }
            }
            let bucket = u32::try_from(bucket).unwrap_or(u32::MAX);
            for (group, cell) in acc.iter_mut().enumerate() {
                for (price, quantity) in cell.drain(..) {
                    rows.push(Row {
                        bucket,
                        group: group as u32,
                        price,
                        quantity,
                    });
                }
            }
        }

        Table {
            data: self,
            requested_period: period,
            client_period,
            billing_periods,
            columns,
            sources,
            buckets: buckets.into_iter().map(|(label, _)| label).collect(),
            group_width,
            group_values,
            price_cells: prices.iter().map(|p| number_text(*p)).collect(),
            prices,
            rows,
        }
    }

    fn atom(&self, sym: Sym) -> Option<&Atom> {
        self.atoms.get(sym as usize)
    }
}

/// A decimal as JSON number text, the same text `Cell::Number` writes.
fn number_text(d: Decimal) -> Box<RawValue> {
    RawValue::from_string(d.normalize().to_string()).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// A DAY or MONTH cell: the bucket's first day in the chosen form (A5).
fn format_bucket(day: Date, format: DateTimeFormat) -> String {
    let date = format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        day.month() as u8,
        day.day()
    );
    match format {
        DateTimeFormat::DatetimeMsOffset => format!("{date}T00:00:00.000+0000"),
        DateTimeFormat::Rfc3339 => format!("{date}T00:00:00Z"),
        DateTimeFormat::DateOnly => date,
    }
}

/// A request's filters as sets of interned values: within a filter any value matches (OR),
/// across filters all must (AND). A value the dataset never had matches nothing.
struct Filter {
    dims: Vec<(usize, Vec<Sym>)>,
    platforms: Vec<(Option<Sym>, Option<Sym>)>,
}

impl Filter {
    fn new(data: &Dataset, request: &QueryBillingUsageApiRequest) -> Self {
        let f = &request.filter_by;
        let text = |s: &str| {
            data.ids
                .get(&Atom::Text(s.into()))
                .copied()
                .unwrap_or(UNKNOWN)
        };
        let texts = |v: &[String]| v.iter().map(|s| text(s)).collect::<Vec<_>>();
        let mut dims = Vec::new();
        let mut add = |d: Agg, values: Vec<Sym>, present: bool| {
            if present {
                dims.push((d as usize, values));
            }
        };
        add(
            Agg::ACCOUNT_KEY,
            texts(&f.account_keys),
            !f.account_keys.is_empty(),
        );
        add(
            Agg::CATEGORY_CODE,
            f.categories.iter().map(|c| text(c.as_str())).collect(),
            !f.categories.is_empty(),
        );
        add(
            Agg::SUBCATEGORY_CODE,
            f.sub_categories.iter().map(|c| text(c.as_str())).collect(),
            !f.sub_categories.is_empty(),
        );
        add(
            Agg::COUNTRY_CODE,
            texts(&f.country_codes),
            !f.country_codes.is_empty(),
        );
        add(
            Agg::DIRECTION,
            f.directions.iter().map(|d| text(d.as_str())).collect(),
            !f.directions.is_empty(),
        );
        add(
            Agg::TRAFFIC_TYPE,
            texts(&f.traffic_types),
            !f.traffic_types.is_empty(),
        );
        add(Agg::SENDER, texts(&f.senders), !f.senders.is_empty());
        add(
            Agg::SENDER_TYPE,
            texts(&f.sender_types),
            !f.sender_types.is_empty(),
        );
        add(
            Agg::CAMPAIGN_REFERENCE,
            texts(&f.campaign_reference_ids),
            !f.campaign_reference_ids.is_empty(),
        );
        add(
            Agg::CAMPAIGN_ID,
            f.campaign_ids
                .iter()
                .map(|i| data.ids.get(&Atom::Int(*i)).copied().unwrap_or(UNKNOWN))
                .collect(),
            !f.campaign_ids.is_empty(),
        );
        add(
            Agg::TEMPLATE_ID,
            texts(&f.template_ids),
            !f.template_ids.is_empty(),
        );
        let platforms = f
            .platforms
            .iter()
            .map(|p| {
                (
                    p.application_id.as_deref().map(text),
                    p.entity_id.as_deref().map(text),
                )
            })
            .collect();
        Self { dims, platforms }
    }

    fn matches(&self, stream: &Stream) -> bool {
        let dims_ok = self.dims.iter().all(|(d, values)| {
            let v = stream.dims[*d];
            v != NA && values.contains(&v)
        });
        dims_ok
            && (self.platforms.is_empty() || {
                let app = stream.dims[Agg::APPLICATION_ID as usize];
                let entity = stream.dims[Agg::ENTITY_ID as usize];
                app != NA
                    && self
                        .platforms
                        .iter()
                        .any(|(a, e)| a.is_none_or(|a| a == app) && e.is_none_or(|e| e == entity))
            })
    }
}

impl Table<'_> {
    fn group(&self, g: u32) -> &[Sym] {
        let start = g as usize * self.group_width;
        self.group_values
            .get(start..start + self.group_width)
            .unwrap_or(&[])
    }

    fn sym_cell(&self, sym: Sym) -> CellRef<'_> {
        match self.data.atom(sym) {
            Some(Atom::Text(t)) => CellRef::Text(t),
            Some(Atom::Int(i)) => CellRef::Int(*i),
            None => CellRef::NotApplicable,
        }
    }

    fn cell(&self, row: &Row, source: Source) -> CellRef<'_> {
        let group = self.group(row.group);
        let price = self
            .prices
            .get(row.price as usize)
            .copied()
            .unwrap_or_default();
        let price_cell = self
            .price_cells
            .get(row.price as usize)
            .map_or(RawValue::NULL, |p| &**p);
        let at = |i: usize| group.get(i).copied().unwrap_or(NA);
        match source {
            Source::Time => self
                .buckets
                .get(row.bucket as usize)
                .map_or(CellRef::NotApplicable, |b| CellRef::Text(b)),
            Source::Dim(i) => self.sym_cell(at(i)),
            Source::Unit => self.sym_cell(at(self.group_width - 2)),
            Source::Currency => self.sym_cell(at(self.group_width - 1)),
            Source::Price => CellRef::Price(price, price_cell),
            Source::Quantity => CellRef::Count(row.quantity),
            Source::Total => CellRef::Decimal(
                (price * Decimal::from(row.quantity))
                    .round_dp_with_strategy(TOTAL_PLACES, RoundingStrategy::MidpointAwayFromZero),
            ),
        }
    }

    fn metadata(&self) -> BillingUsageMetadata {
        BillingUsageMetadata {
            client_requested_period: DateTimeInterval::from_days(self.client_period),
            billing_periods: self.billing_periods.clone(),
        }
    }

    pub(super) fn to_result(&self, request_id: &str) -> BillingUsageResult {
        let rows = self
            .rows
            .iter()
            .map(|row| {
                self.sources
                    .iter()
                    .map(|s| match self.cell(row, *s) {
                        CellRef::Text(t) => Cell::Text(t.to_owned()),
                        CellRef::Int(i) => Cell::Number(Decimal::from(i)),
                        CellRef::Count(n) => Cell::Number(Decimal::from(n)),
                        CellRef::Price(d, _) | CellRef::Decimal(d) => Cell::Number(d),
                        CellRef::NotApplicable => Cell::NotApplicable,
                    })
                    .collect()
            })
            .collect();
        BillingUsageResult {
            request_id: request_id.to_owned(),
            status: QueryAggregateDataStatus::Success,
            failure_message: None,
            response: Some(AggregateDataResponse {
                requested_period: DateTimeInterval::from_days(self.requested_period),
                total_rows: self.total_rows(),
                columns: self.columns.clone(),
                rows,
            }),
            metadata: Some(self.metadata()),
        }
    }

    fn total_rows(&self) -> i32 {
        i32::try_from(self.rows.len()).unwrap_or(i32::MAX)
    }

    /// The callback body, byte for byte what serializing [`Self::to_result`] gives, written
    /// straight from the compact rows.
    pub(super) fn to_body(&self, request_id: &str) -> Vec<u8> {
        let body = Body {
            request_id,
            table: self,
        };
        let mut out = Vec::with_capacity(256 + self.rows.len() * 16 * self.sources.len());
        match serde_json::to_writer(&mut out, &body) {
            Ok(()) => out,
            // Only a cell that is not valid JSON could fail, and every cell is built here.
            Err(e) => {
                tracing::error!(error = %e, "could not serialize a simulated result");
                Vec::new()
            }
        }
    }
}

struct Body<'t, 'a> {
    request_id: &'t str,
    table: &'t Table<'a>,
}

impl Serialize for Body<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.table;
        let mut m = s.serialize_struct("BillingUsageResult", 4)?;
        m.serialize_field("requestId", self.request_id)?;
        m.serialize_field("status", &QueryAggregateDataStatus::Success)?;
        m.serialize_field("response", &ResponseView(t))?;
        m.serialize_field("metadata", &t.metadata())?;
        m.end()
    }
}

struct ResponseView<'t, 'a>(&'t Table<'a>);

impl Serialize for ResponseView<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut m = s.serialize_struct("AggregateDataResponse", 4)?;
        m.serialize_field(
            "requestedPeriod",
            &DateTimeInterval::from_days(t.requested_period),
        )?;
        m.serialize_field("totalRows", &t.total_rows())?;
        m.serialize_field("columns", &t.columns)?;
        m.serialize_field("rows", &RowsView(t))?;
        m.end()
    }
}

struct RowsView<'t, 'a>(&'t Table<'a>);

impl Serialize for RowsView<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut seq = s.serialize_seq(Some(t.rows.len()))?;
        for row in &t.rows {
            seq.serialize_element(&RowView(t, row))?;
        }
        seq.end()
    }
}

struct RowView<'t, 'a>(&'t Table<'a>, &'t Row);

impl Serialize for RowView<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let RowView(t, row) = self;
        let mut seq = s.serialize_seq(Some(t.sources.len()))?;
        for source in &t.sources {
            match t.cell(row, *source) {
                CellRef::Text(text) => seq.serialize_element(text)?,
                CellRef::NotApplicable => seq.serialize_element(NOT_APPLICABLE)?,
                CellRef::Int(i) => seq.serialize_element(&i)?,
                // Same text as `Cell::Number`: exact decimal, no trailing zeros.
                CellRef::Count(n) => seq.serialize_element(&n)?,
                CellRef::Price(_, raw) => seq.serialize_element(raw)?,
                CellRef::Decimal(d) => seq.serialize_element(&number_text(d))?,
            }
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn request(aggregate_by: Vec<Agg>, since: Date, until: Date) -> QueryBillingUsageApiRequest {
        QueryBillingUsageApiRequest::unfiltered(DayRange { since, until }, aggregate_by)
    }

    #[test]
    fn streamed_body_equals_serialized_result() {
        let data = Dataset::generate(7, Scale::default());
        let req = request(
            vec![
                Agg::DAY,
                Agg::CAMPAIGN_ID,
                Agg::TEMPLATE_ID,
                Agg::COUNTRY_CODE,
            ],
            date!(2026 - 04 - 01),
            date!(2026 - 04 - 04),
        );
        let table = data.query(
            &req,
            datetime!(2026-04-03 12:00 UTC),
            &SimulatorOptions::default(),
        );
        let via_model = serde_json::to_vec(&table.to_result("ID")).unwrap();
        assert_eq!(
            String::from_utf8(table.to_body("ID")).unwrap(),
            String::from_utf8(via_model).unwrap()
        );
    }

    #[test]
    fn revision_is_frozen_after_finalization() {
        let day = date!(2026 - 04 - 10);
        assert_eq!(revision(day, datetime!(2026-04-10 12:00 UTC)), 0);
        assert_eq!(revision(day, datetime!(2026-04-11 01:00 UTC)), 1);
        assert_eq!(revision(day, datetime!(2026-04-30 00:00 UTC)), 5);
        assert_eq!(
            revision(day, datetime!(2026-05-05 00:00 UTC)),
            FINAL_REVISION
        );
        let april = YearMonth::of(day);
        assert!(
            discount_percent(april, datetime!(2026-04-12 0:00 UTC))
                < discount_percent(april, datetime!(2026-05-05 0:00 UTC))
        );
        assert_eq!(
            discount_percent(april, datetime!(2026-05-05 0:00 UTC)),
            discount_percent(april, datetime!(2026-07-30 0:00 UTC))
        );
    }

    #[test]
    fn auto_added_columns_come_first() {
        let names = |a: &[Agg]| {
            dimension_columns(a)
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&[Agg::DAY]), ["ACCOUNT_NAME", "CATEGORY_CODE", "DAY"]);
        assert_eq!(
            names(&[Agg::ACCOUNT_KEY, Agg::DAY]),
            ["CATEGORY_CODE", "ACCOUNT_KEY", "DAY"]
        );
        assert_eq!(
            names(&[Agg::CATEGORY_NAME, Agg::ACCOUNT_NAME]),
            ["CATEGORY_NAME", "ACCOUNT_NAME"]
        );
        // DAY and MONTH together (allowed by a switch) keep only the finer DAY.
        assert_eq!(
            names(&[Agg::MONTH, Agg::DAY]),
            ["ACCOUNT_NAME", "CATEGORY_CODE", "DAY"]
        );
    }
}

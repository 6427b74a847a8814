//! The fixed catalogue the customer is drawn from: products with their EUR list prices, countries
//! with their price levels and networks, and the names of companies, divisions and senders.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::infobip::model::{Category, Direction, SubCategory};

/// Places of `UNIT_PRICE`.
const PRICE_PLACES: u32 = 4;
/// USD list prices are the EUR ones times this.
pub(super) const USD_PER_EUR: Decimal = Decimal::from_parts(108, 0, 0, false, 2);

/// A price at `UNIT_PRICE` precision, never below its smallest step.
pub(super) fn round_price(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(PRICE_PLACES, RoundingStrategy::MidpointAwayFromZero)
        .max(Decimal::new(1, PRICE_PLACES))
}

#[derive(Clone, Copy)]
pub(super) enum Reach {
    /// Per destination country, optionally per mobile network.
    Countries { networks: bool },
    /// US carrier surcharges.
    UsOnly,
    /// No country (e-mail, push, AI, …): country and network cells are `N/A`.
    Global,
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum SenderKind {
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
pub(super) enum Pricing {
    /// Scaled by the country's SMS price level.
    Sms,
    /// Scaled by the country's OTT (WhatsApp, Viber, RCS) price level.
    Ott,
    Flat,
}

/// One billable product: a category with its traffic type, unit and list price.
pub(super) struct Product {
    pub(super) category: Category,
    pub(super) sub: Option<SubCategory>,
    pub(super) traffic_type: Option<&'static str>,
    pub(super) direction: Option<Direction>,
    pub(super) unit: &'static str,
    /// EUR list price, `(mantissa, scale)`.
    pub(super) price: (i64, u32),
    pub(super) pricing: Pricing,
    /// Weekday units per day for a full-size account, before country and sender shares.
    pub(super) volume: u64,
    /// Weekend units relative to a weekday.
    pub(super) weekend_per_mille: u64,
    pub(super) reach: Reach,
    pub(super) sender: SenderKind,
    /// Template-based (WhatsApp): carries a TEMPLATE_ID.
    pub(super) template: bool,
    /// Sent messages: may carry campaign ids, references and CPaaS X application/entity.
    pub(super) messaging: bool,
    /// Only on a WhatsApp MAU plan (overage rows, reference §7).
    pub(super) mau_plan: bool,
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
pub(super) const PRODUCTS: [Product; 24] = [
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

pub(super) struct Country {
    pub(super) code: &'static str,
    pub(super) name: &'static str,
    pub(super) prefix: &'static str,
    /// Price level against the US, per mille, for SMS-priced and OTT-priced products.
    pub(super) sms: i64,
    pub(super) ott: i64,
    pub(super) networks: &'static [(&'static str, &'static str)],
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
pub(super) const COUNTRIES: [Country; 20] = [
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

pub(super) const COMPANIES: [&str; 8] = [
    "Acme Retail",
    "Globex",
    "Initech",
    "Umbrella Health",
    "Stark Logistics",
    "Wayne Finance",
    "Hooli",
    "Vandelay Imports",
];
pub(super) const DIVISIONS: [&str; 8] = [
    "Marketing",
    "Support",
    "Payments",
    "Notifications",
    "EU",
    "US",
    "APAC",
    "Onboarding",
];
pub(super) const ROLES: [&str; 4] = ["API", "BROADCAST", "FLOW", "PORTAL"];
pub(super) const CAMPAIGN_REFERENCES: [&str; 6] = [
    "otp-login",
    "order-updates",
    "spring-sale-2026",
    "newsletter",
    "appointment-reminders",
    "cart-recovery",
];
pub(super) const EMAIL_SENDERS: [&str; 4] = ["notifications", "news", "billing", "hello"];

pub(super) fn category_name(c: Category) -> &'static str {
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

pub(super) fn subcategory_name(s: SubCategory) -> &'static str {
    match s {
        SubCategory::VIBER_BM => "Viber BM",
        SubCategory::VIBER_BOTS => "Viber Bots",
    }
}

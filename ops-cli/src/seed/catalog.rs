//! What `bazaar seed` puts in the shop: a small demo catalog that reads
//! like a real one (so search has words to find), one product that is
//! deliberately sold out (so `bazaar load` can provoke out-of-stock
//! rejections), and, on request, a large synthetic catalog for benchmarks.
//! Every SKU is deterministic, which is what makes seeding idempotent.

use serde::Serialize;

/// One product to create, in the shape of `POST /api/v1/products`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductSpec {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: Price,
    /// Units to set on hand; `None` means the `--stock` of the run.
    #[serde(skip)]
    pub stock: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Price {
    pub amount_minor: i64,
    pub currency: &'static str,
}

/// The SKU of the product that always has zero stock.
pub const SOLD_OUT_SKU: &str = "LTD-001";

/// (sku, name, category, price in cents, description)
const DEMO: [(&str, &str, &str, i64, &str); 24] = [
    ("CMP-001", "Mechanical keyboard", "computers", 8_999,
     "Full-size mechanical keyboard with brown switches for any desktop computer; USB-C, detachable cable."),
    ("CMP-002", "Wireless mouse", "computers", 2_999,
     "Quiet ergonomic mouse that pairs with a computer or tablet over Bluetooth; runs a year on one battery."),
    ("CMP-003", "27-inch 4K monitor", "computers", 32_900,
     "IPS computer monitor with 4K resolution, USB-C power delivery and a height-adjustable stand."),
    ("CMP-004", "USB-C docking station", "computers", 14_900,
     "Connect your laptop computer to two screens, ethernet and four USB ports with one cable."),
    ("CMP-005", "Laptop stand", "computers", 3_999,
     "Aluminium stand that lifts a laptop computer to eye level; folds flat for travel."),
    ("CMP-006", "Noise-cancelling headset", "computers", 12_900,
     "Over-ear headset with a boom microphone for calls and music at the computer."),
    ("BOOK-001", "The Pragmatic Programmer", "books", 4_299,
     "Classic book on the craft of software: from journeyman to master programmer."),
    ("BOOK-002", "Designing Data-Intensive Applications", "books", 4_899,
     "How databases, streams and distributed systems really work; essential reading for computer engineers."),
    ("BOOK-003", "Structure and Interpretation of Computer Programs", "books", 5_500,
     "The wizard book: computer science from first principles, with Scheme."),
    ("BOOK-004", "The Joy of Cooking", "books", 3_200,
     "The kitchen classic: thousands of recipes, from breakfast to holiday roasts."),
    ("BOOK-005", "The Well-Tempered Garden", "books", 2_450,
     "Christopher Lloyd on planting, pruning and the pleasures of a garden through the seasons."),
    ("BOOK-006", "Rust in Action", "books", 4_599,
     "Systems programming in Rust: memory, files, networking and a tiny operating system."),
    ("KIT-001", "Chef's knife, 20 cm", "kitchen", 7_900,
     "Forged stainless steel chef's knife with a full tang; the one kitchen knife you need."),
    ("KIT-002", "Cast-iron skillet", "kitchen", 4_500,
     "Pre-seasoned 26 cm cast-iron pan for searing, baking and campfire cooking."),
    ("KIT-003", "Espresso machine", "kitchen", 39_900,
     "Dual-boiler espresso machine with a steam wand; brews cafe-quality coffee at home."),
    ("KIT-004", "Digital kitchen scale", "kitchen", 1_999,
     "Weighs flour, coffee and spices to the gram; tare button and a washable glass top."),
    ("KIT-005", "Stand mixer", "kitchen", 29_900,
     "Five-litre stand mixer with dough hook, whisk and beater for bread, cakes and cookies."),
    ("KIT-006", "Bamboo cutting board", "kitchen", 2_499,
     "Large reversible cutting board with a juice groove; gentle on kitchen knives."),
    ("GDN-001", "Garden hose, 25 m", "garden", 3_499,
     "Kink-resistant garden hose with brass fittings and a seven-pattern spray nozzle."),
    ("GDN-002", "Pruning shears", "garden", 2_799,
     "Bypass secateurs for roses, shrubs and fruit trees; cuts branches up to 20 mm."),
    ("GDN-003", "Raised garden bed", "garden", 11_900,
     "Cedar raised bed, 120 x 60 cm, for vegetables and herbs on a patio or lawn."),
    ("GDN-004", "Solar garden lights", "garden", 2_999,
     "Set of eight solar path lights that switch on at dusk; no wiring needed."),
    ("GDN-005", "Compost bin", "garden", 5_900,
     "330-litre compost bin with a lid and a hatch at the bottom; turns kitchen scraps into soil."),
    ("GDN-006", "Weather station", "garden", 8_900,
     "Wireless weather station with an outdoor sensor; logs rain and temperature to your computer."),
];

/// The demo catalog: 24 products over four categories, plus the sold-out one.
pub fn demo() -> Vec<ProductSpec> {
    let mut products: Vec<ProductSpec> = DEMO
        .iter()
        .map(|&(sku, name, category, cents, description)| ProductSpec {
            sku: sku.to_owned(),
            name: name.to_owned(),
            description: description.to_owned(),
            category: category.to_owned(),
            price: eur(cents),
            stock: None,
        })
        .collect();
    products.push(ProductSpec {
        sku: SOLD_OUT_SKU.to_owned(),
        name: "Limited edition split keyboard".to_owned(),
        description: "A split mechanical keyboard for the computer enthusiast; sold out, \
                      kept in the catalog to show what out of stock looks like."
            .to_owned(),
        category: "computers".to_owned(),
        price: eur(24_900),
        stock: Some(0),
    });
    products
}

const ADJECTIVES: [&str; 8] = [
    "compact", "sturdy", "wireless", "vintage", "portable", "quiet", "solar", "classic",
];
const NOUNS: [(&str, &str); 8] = [
    ("keyboard", "computers"),
    ("notebook", "books"),
    ("kettle", "kitchen"),
    ("watering can", "garden"),
    ("monitor arm", "computers"),
    ("cookbook", "books"),
    ("teapot", "kitchen"),
    ("wheelbarrow", "garden"),
];

/// The `n`th synthetic product (1-based), e.g. `SYN-000042`: a made-up name
/// and description from a few words, so search over a big catalog still
/// has something to match, and a price that varies.
pub fn synthetic(n: u64) -> ProductSpec {
    // Cheap mixing so neighbouring numbers do not all get the same words.
    let mix = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    let adjective = ADJECTIVES[(mix % 8) as usize];
    let (noun, category) = NOUNS[((mix / 8) % 8) as usize];
    let cents = 499 + (mix % 20_000) as i64;
    ProductSpec {
        sku: format!("SYN-{n:06}"),
        name: format!("{adjective} {noun} {n}"),
        description: format!(
            "Synthetic benchmark product {n}: a {adjective} {noun} from the {category} department."
        ),
        category: category.to_owned(),
        price: eur(cents),
        stock: None,
    }
}

fn eur(amount_minor: i64) -> Price {
    Price {
        amount_minor,
        currency: "EUR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_demo_catalog_has_unique_skus_a_few_categories_and_words_to_search_for() {
        let products = demo();

        let skus: BTreeSet<&str> = products.iter().map(|p| p.sku.as_str()).collect();
        let categories: BTreeSet<&str> = products.iter().map(|p| p.category.as_str()).collect();
        let computer = products
            .iter()
            .filter(|p| p.description.to_lowercase().contains("computer"))
            .count();
        assert_eq!(skus.len(), products.len());
        assert_eq!(products.len(), 25);
        assert_eq!(categories.len(), 4);
        assert!(computer >= 5, "only {computer} mention computer");
        assert_eq!(
            products.iter().filter(|p| p.stock == Some(0)).count(),
            1,
            "exactly one sold-out product"
        );
    }

    #[test]
    fn synthetic_products_are_deterministic_and_numbered() {
        assert_eq!(synthetic(42), synthetic(42));
        assert_eq!(synthetic(42).sku, "SYN-000042");
        assert_eq!(synthetic(1_000_000).sku, "SYN-1000000");
        assert_ne!(synthetic(1).name, synthetic(2).name);
        assert!((1..=1_000_000)
            .step_by(9_973)
            .all(|n| synthetic(n).price.amount_minor >= 499));
    }
}

//! A synthetic catalog that reads like a shop's: names and descriptions
//! drawn from word lists, so that common words match many products and
//! rare ones few, as real queries do. Generated from a seed, so every run
//! indexes the same catalog.

use contracts::product::ProductCreatedV1;
use contracts::Money;
use uuid::Uuid;

pub const CATEGORIES: [(&str, &[&str]); 10] = [
    (
        "Computers",
        &[
            "keyboard",
            "mouse",
            "monitor",
            "laptop",
            "webcam",
            "headset",
            "router",
            "tablet",
            "printer",
            "dock",
            "charger",
            "microphone",
            "speaker",
            "drive",
            "computer",
        ],
    ),
    (
        "Kitchen",
        &[
            "kettle", "toaster", "blender", "knife", "pan", "pot", "grinder", "scale", "mug",
            "teapot", "colander", "whisk", "juicer", "mixer", "oven",
        ],
    ),
    (
        "Garden",
        &[
            "hose",
            "rake",
            "shovel",
            "planter",
            "sprinkler",
            "trimmer",
            "mower",
            "gloves",
            "wheelbarrow",
            "lantern",
            "bench",
            "trellis",
            "pruner",
            "seeds",
            "compost",
        ],
    ),
    (
        "Outdoor",
        &[
            "tent",
            "backpack",
            "compass",
            "flashlight",
            "stove",
            "sleeping",
            "hammock",
            "bottle",
            "jacket",
            "boots",
            "map",
            "binoculars",
            "cooler",
            "knife",
            "chair",
        ],
    ),
    (
        "Home",
        &[
            "lamp", "rug", "curtain", "pillow", "blanket", "mirror", "clock", "shelf", "vase",
            "candle", "frame", "basket", "sofa", "table", "chair",
        ],
    ),
    (
        "Toys",
        &[
            "puzzle",
            "robot",
            "doll",
            "kite",
            "blocks",
            "train",
            "drone",
            "ball",
            "boardgame",
            "plush",
            "scooter",
            "car",
            "marbles",
            "yoyo",
            "telescope",
        ],
    ),
    (
        "Sports",
        &[
            "racket", "ball", "helmet", "gloves", "mat", "dumbbell", "bicycle", "skates",
            "goggles", "rope", "bottle", "shoes", "bag", "watch", "tracker",
        ],
    ),
    (
        "Office",
        &[
            "desk",
            "chair",
            "stapler",
            "notebook",
            "pen",
            "folder",
            "binder",
            "whiteboard",
            "lamp",
            "organizer",
            "calculator",
            "shredder",
            "planner",
            "marker",
            "clip",
        ],
    ),
    (
        "Audio",
        &[
            "headphones",
            "speaker",
            "amplifier",
            "turntable",
            "soundbar",
            "earbuds",
            "radio",
            "microphone",
            "subwoofer",
            "receiver",
            "cable",
            "mixer",
            "stand",
            "player",
            "dac",
        ],
    ),
    (
        "Bath",
        &[
            "towel",
            "mat",
            "shower",
            "mirror",
            "soap",
            "dispenser",
            "scale",
            "robe",
            "caddy",
            "brush",
            "tray",
            "hook",
            "basket",
            "curtain",
            "razor",
        ],
    ),
];

pub const ADJECTIVES: [&str; 40] = [
    "wireless",
    "compact",
    "ergonomic",
    "vintage",
    "smart",
    "portable",
    "heavy-duty",
    "lightweight",
    "foldable",
    "premium",
    "classic",
    "modern",
    "rechargeable",
    "waterproof",
    "silent",
    "adjustable",
    "durable",
    "minimalist",
    "professional",
    "eco-friendly",
    "rustic",
    "cordless",
    "stackable",
    "insulated",
    "magnetic",
    "retro",
    "ultra-thin",
    "sturdy",
    "soft",
    "digital",
    "solar",
    "quick",
    "large",
    "mini",
    "deluxe",
    "handmade",
    "stainless",
    "bamboo",
    "ceramic",
    "oak",
];

pub const BRANDS: [&str; 30] = [
    "Nordvik",
    "Alpenglow",
    "Brightline",
    "Cobalt",
    "Driftwood",
    "Everlast",
    "Foxtrot",
    "Granite",
    "Harbor",
    "Ironbark",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Northwind",
    "Oakridge",
    "Pinecrest",
    "Quartz",
    "Redwood",
    "Summit",
    "Tidewater",
    "Umbra",
    "Vantage",
    "Willow",
    "Xylo",
    "Yarrow",
    "Zephyr",
    "Aurora",
    "Bristle",
    "Cascade",
];

pub const MATERIALS: [&str; 16] = [
    "aluminium",
    "steel",
    "oak",
    "walnut",
    "bamboo",
    "recycled plastic",
    "glass",
    "cotton",
    "wool",
    "leather",
    "silicone",
    "ceramic",
    "copper",
    "linen",
    "carbon fibre",
    "cork",
];

pub const USES: [&str; 16] = [
    "the office",
    "travel",
    "gaming",
    "camping",
    "the kitchen",
    "kids",
    "home workouts",
    "the garden",
    "students",
    "small spaces",
    "everyday use",
    "the bathroom",
    "parties",
    "photography",
    "music lovers",
    "professionals",
];

pub const FEATURES: [&str; 16] = [
    "a two-year warranty",
    "a long-lasting battery",
    "a non-slip base",
    "a soft-touch finish",
    "a carrying case",
    "USB-C charging",
    "a lifetime guarantee",
    "tool-free assembly",
    "a quiet motor",
    "easy cleaning",
    "replaceable parts",
    "an energy-saving mode",
    "a scratch-resistant coating",
    "three colour options",
    "a compact footprint",
    "a magnetic mount",
];

/// A small deterministic generator (no dependency, same catalog on any
/// machine for the same seed).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

/// The `n`-th product of the catalog of `seed`.
pub fn product(rng: &mut Rng, n: u64) -> ProductCreatedV1 {
    let (category, nouns) = CATEGORIES[rng.below(CATEGORIES.len())];
    let noun = rng.pick(nouns);
    let adjective = rng.pick(&ADJECTIVES);
    let brand = rng.pick(&BRANDS);
    let name = format!(
        "{brand} {} {} {}-{}",
        capitalise(adjective),
        capitalise(noun),
        &noun[..1].to_uppercase(),
        100 + rng.below(900)
    );
    let (other_category, other_nouns) = CATEGORIES[rng.below(CATEGORIES.len())];
    let description = format!(
        "A {} {noun} made of {} for {}. It comes with {} and {}. Pairs well with our {} {} from the {} range.",
        rng.pick(&ADJECTIVES),
        rng.pick(&MATERIALS),
        rng.pick(&USES),
        rng.pick(&FEATURES),
        rng.pick(&FEATURES),
        rng.pick(&ADJECTIVES),
        rng.pick(other_nouns),
        other_category.to_lowercase(),
    );
    ProductCreatedV1 {
        product_id: Uuid::from_u64_pair(rng.next(), rng.next()),
        sku: format!("BZ-{n:08}"),
        name,
        description,
        category: category.to_owned(),
        price: Money::eur(i64::try_from(199 + rng.below(99_800)).unwrap_or(1999)),
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#!/usr/bin/env python3
"""Write server/seed/catalog.json: the seed catalog shipped with the project.

City centres are real (WGS 84, from public gazetteers); stores are placed around each centre at
deterministic pseudo-random distances (up to ~4 km), so the file is reproducible byte for byte:
    python3 scripts/gen-seed.py
"""
import json
import math
import random
from pathlib import Path

CITIES = [
    # name, postcode, lat, lon, stores
    ("Paris", "75001", 48.8566, 2.3522, 40),
    ("Marseille", "13001", 43.2965, 5.3698, 18),
    ("Lyon", "69001", 45.7640, 4.8357, 18),
    ("Toulouse", "31000", 43.6047, 1.4442, 14),
    ("Nice", "06000", 43.7102, 7.2620, 12),
    ("Nantes", "44000", 47.2184, -1.5536, 12),
    ("Montpellier", "34000", 43.6108, 3.8767, 10),
    ("Strasbourg", "67000", 48.5734, 7.7521, 10),
    ("Bordeaux", "33000", 44.8378, -0.5792, 12),
    ("Lille", "59000", 50.6292, 3.0573, 12),
    ("Rennes", "35000", 48.1173, -1.6778, 9),
    ("Reims", "51100", 49.2583, 4.0317, 7),
    ("Toulon", "83000", 43.1242, 5.9280, 7),
    ("Saint-Étienne", "42000", 45.4397, 4.3872, 7),
    ("Le Havre", "76600", 49.4944, 0.1079, 6),
    ("Grenoble", "38000", 45.1885, 5.7245, 8),
    ("Dijon", "21000", 47.3220, 5.0415, 7),
    ("Angers", "49000", 47.4784, -0.5632, 6),
    ("Nîmes", "30000", 43.8367, 4.3601, 6),
    ("Clermont-Ferrand", "63000", 45.7772, 3.0870, 6),
    ("Le Mans", "72000", 48.0061, 0.1996, 5),
    ("Aix-en-Provence", "13100", 43.5297, 5.4474, 6),
    ("Brest", "29200", 48.3904, -4.4861, 5),
    ("Tours", "37000", 47.3941, 0.6848, 6),
    ("Amiens", "80000", 49.8941, 2.2958, 5),
    ("Limoges", "87000", 45.8336, 1.2611, 5),
    ("Annecy", "74000", 45.8992, 6.1294, 5),
    ("Perpignan", "66000", 42.6887, 2.8948, 5),
    ("Metz", "57000", 49.1193, 6.1757, 5),
    ("Besançon", "25000", 47.2378, 6.0241, 5),
    ("Orléans", "45000", 47.9030, 1.9093, 5),
    ("Rouen", "76000", 49.4432, 1.0999, 6),
    ("Caen", "14000", 49.1829, -0.3707, 5),
    ("Nancy", "54000", 48.6921, 6.1844, 5),
    ("Avignon", "84000", 43.9493, 4.8055, 4),
    ("La Rochelle", "17000", 46.1603, -1.1511, 4),
    ("Pau", "64000", 43.2951, -0.3708, 4),
    ("Biarritz", "64200", 43.4832, -1.5586, 3),
    ("Ajaccio", "20000", 41.9192, 8.7386, 3),
    ("Bastia", "20200", 42.6970, 9.4503, 3),
]
STREETS = ["rue de la République", "avenue Jean Jaurès", "rue Victor Hugo", "place du Marché",
           "boulevard Gambetta", "rue Nationale", "cours Lafayette", "rue Pasteur",
           "avenue de la Gare", "centre commercial Les Halles", "rue du Général de Gaulle",
           "quai des Arts"]
TAGS = ["flagship", "outlet", "mall", "station", "city-centre", "drive", "late-opening", "cafe"]
CATEGORIES = ["tea", "coffee", "pastry", "chocolate", "gifts", "tableware", "organic"]


def hours(rng, tags):
    close = "21:00" if "late-opening" in tags else "19:30"
    spans = [{"day": d, "opens": "09:30", "closes": close} for d in range(1, 7)]
    if rng.random() < 0.4:
        spans.append({"day": 7, "opens": "10:00", "closes": "13:00"})
    return spans


def main():
    rng = random.Random(20261123)
    stores = []
    for city, postcode, lat, lon, n in CITIES:
        slug = city.lower().replace(" ", "-").replace("é", "e").replace("î", "i").replace("ç", "c")
        for i in range(n):
            # Uniform in a disc of radius 4 km around the centre.
            r = 4000 * math.sqrt(rng.random())
            theta = rng.random() * 2 * math.pi
            dlat = (r * math.cos(theta)) / 111_320
            dlon = (r * math.sin(theta)) / (111_320 * math.cos(math.radians(lat)))
            tags = sorted(rng.sample(TAGS, rng.randint(1, 3)))
            stores.append({
                "id": f"st-{slug}-{i + 1:02d}",
                "name": f"Tessera Thés {city} {i + 1}",
                "address": f"{rng.randint(1, 180)} {rng.choice(STREETS)}",
                "postcode": postcode,
                "city": city,
                "country": "FR",
                "latitude": round(lat + dlat, 6),
                "longitude": round(lon + dlon, 6),
                "radius_m": rng.choice([100, 150, 200, 250]),
                "timezone": "Europe/Paris",
                "opening_hours": hours(rng, tags),
                "tags": tags,
            })
    kinds = [
        lambda: {"type": "percent_off", "percent": rng.choice([10, 15, 20, 25, 30])},
        lambda: {"type": "amount_off", "amount_cents": rng.choice([300, 500, 1000]), "currency": "EUR"},
        lambda: {"type": "points_multiplier", "multiplier_percent": rng.choice([150, 200, 300])},
        lambda: {"type": "gift", "item": rng.choice(["a tasting cup", "a tin of Earl Grey", "a macaron"])},
        lambda: {"type": "free_delivery"},
        lambda: {"type": "early_access", "collection": rng.choice(["Winter teas", "Spring collection"])},
    ]
    titles = ["Welcome offer", "Weekend treat", "Double points", "Tea time", "Members' preview",
              "Free delivery week", "Birthday surprise", "Rainy day", "Afternoon break", "Refill"]
    offers = []
    for i in range(90):
        kind = kinds[i % len(kinds)]()
        channel = "online" if kind["type"] == "free_delivery" else rng.choice(["in_store", "both", "in_store"])
        targeted = rng.random()
        offer = {
            "id": f"of-{i + 1:03d}",
            "title": f"{rng.choice(titles)} #{i + 1}",
            "description": "Show your card at the till or use it online.",
            "kind": kind,
            "valid_from": "2026-01-01T00:00:00Z",
            "valid_to": "2027-12-31T23:59:59Z",
            "channel": channel,
            "days": sorted(rng.sample(range(1, 8), 2)) if rng.random() < 0.2 else [],
            "store_ids": sorted(s["id"] for s in rng.sample(stores, 3)) if targeted < 0.2 else [],
            "store_tags": [rng.choice(TAGS)] if 0.2 <= targeted < 0.4 else [],
            "categories": sorted(rng.sample(CATEGORIES, rng.randint(1, 2))),
            "tiers": ["Gold"] if rng.random() < 0.1 else [],
            "segments": [],
            "min_basket_cents": rng.choice([None, 1500, 3000]),
            "per_member_limit": rng.choice([None, 1, 3]),
            "requires_clip": rng.random() < 0.5,
        }
        if rng.random() < 0.15:
            offer["hours_from"], offer["hours_to"] = "15:00", "18:00"
        if offer["id"] == "of-009":
            # The demo's and the tests' coupon: clipped and redeemed many times by one member.
            offer["per_member_limit"] = None
        offers.append(offer)
    catalog = {
        "program": {"id": "tessera-thes", "name": "Tessera Thés", "brand_color": "#2E5E4E",
                    "symbology": "ean13"},
        "stores": stores,
        "offers": offers,
    }
    out = Path(__file__).resolve().parent.parent / "server" / "seed" / "catalog.json"
    out.write_text(json.dumps(catalog, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{out}: {len(stores)} stores, {len(offers)} offers")


if __name__ == "__main__":
    main()

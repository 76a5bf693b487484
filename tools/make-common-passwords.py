"""Writes apps/dashboard-api/src/obd2_dashboard/auth/common-passwords.txt.

The list is generated here, not copied from anywhere: the base words are the passwords that
every published breach survey puts at the top (they are facts, not anyone's work), combined the
way people combine them. It is dedicated to the public domain (CC0-1.0), like this script.

Run: python3 tools/make-common-passwords.py
"""

import itertools
import re
from pathlib import Path

OUT = (
    Path(__file__).resolve().parents[1]
    / "apps/dashboard-api/src/obd2_dashboard/auth/common-passwords.txt"
)

# The words at the top of every survey of leaked passwords.
WORDS = [
    "password",
    "passw0rd",
    "letmein",
    "welcome",
    "admin",
    "administrator",
    "login",
    "master",
    "qwerty",
    "iloveyou",
    "monkey",
    "dragon",
    "football",
    "baseball",
    "basketball",
    "soccer",
    "hockey",
    "sunshine",
    "princess",
    "shadow",
    "superman",
    "batman",
    "spiderman",
    "starwars",
    "pokemon",
    "michael",
    "jordan",
    "jennifer",
    "jessica",
    "ashley",
    "daniel",
    "thomas",
    "charlie",
    "robert",
    "hannah",
    "andrew",
    "joshua",
    "matthew",
    "freedom",
    "whatever",
    "trustno1",
    "secret",
    "ninja",
    "mustang",
    "access",
    "flower",
    "hello",
    "hunter",
    "buster",
    "tigger",
    "summer",
    "winter",
    "spring",
    "autumn",
    "cookie",
    "cheese",
    "pepper",
    "ginger",
    "killer",
    "hottie",
    "lovely",
    "loveme",
    "angel",
    "angels",
    "friends",
    "family",
    "forever",
    "computer",
    "internet",
    "google",
    "facebook",
    "linkedin",
    "yahoo",
    "microsoft",
    "apple",
    "samsung",
    "chocolate",
    "butterfly",
    "rainbow",
    "purple",
    "orange",
    "banana",
    "cowboy",
    "merlin",
    "harley",
    "maggie",
    "silver",
    "golden",
    "diamond",
    "liverpool",
    "chelsea",
    "arsenal",
    "barcelona",
    "madrid",
    "london",
    "america",
    "canada",
    "australia",
    "jesus",
    "heaven",
    "blessed",
    "default",
    "changeme",
    "changeit",
    "guest",
    "root",
    "test",
    "tester",
    "testing",
    "qazwsx",
    "zaq12wsx",
    "asdfgh",
    "zxcvbn",
    "abc123",
    "mypassword",
    "yourpassword",
    "newpassword",
    "oldpassword",
    "secretpassword",
    "strongpassword",
    "supersecret",
    "mysecret",
    "opensesame",
    "letmeinnow",
    "trustnoone",
    "iloveu",
    "loveyou",
    "babygirl",
    "babyboy",
    "sweetheart",
]

# Phrases people pick when told to pick a long password.
PHRASES = [
    "iloveyouforever",
    "iloveyousomuch",
    "iloveyoubaby",
    "iloveyoutoo",
    "iloveyoumore",
    "iloveyoualways",
    "ilovemyfamily",
    "ilovemymom",
    "ilovemydad",
    "ilovemykids",
    "ilovemywife",
    "ilovemyhusband",
    "ilovemydog",
    "ilovemycat",
    "ilovejesus",
    "jesuslovesme",
    "jesusismylord",
    "godisgood",
    "godisgreat",
    "godisloveee",
    "correcthorsebatterystaple",
    "thequickbrownfoxjumpsoverthelazydog",
    "maytheforcebewithyou",
    "maythe4thbewithyou",
    "letmeinplease",
    "pleaseletmein",
    "thisismypassword",
    "thisisapassword",
    "thisisasecret",
    "thisisatest",
    "passwordpassword",
    "mypasswordisstrong",
    "mysecretpassword",
    "supersecretpassword",
    "verysecretpassword",
    "superstrongpassword",
    "donotforget",
    "dontforgetme",
    "neverforget",
    "whateverwhatever",
    "hellohellohello",
    "hellothere",
    "helloworld",
    "hellokitty",
    "administrator123",
    "adminadminadmin",
    "rootpassword",
    "defaultpassword",
    "changemenow",
    "changethis",
    "changethispassword",
    "temporarypassword",
    "temppassword",
    "welcometothejungle",
    "welcomehome",
    "welcomeback",
    "welcome2024",
    "welcome2025",
    "summertime",
    "wintertime",
    "springtime",
    "happybirthday",
    "happydays",
    "goodmorning",
    "goodnight",
    "onetwothreefour",
    "onetwothreefourfive",
    "qwertyqwerty",
    "letmeinletmein",
    "trustno1trustno1",
    "starwarsforever",
    "harrypotter",
    "harrypotterfan",
    "lordoftherings",
    "gameofthrones",
    "manchesterunited",
    "liverpoolfc",
    "realmadrid",
    "fcbarcelona",
    "newyorkyankees",
    "chicagobulls",
    "dallascowboys",
    "greenbaypackers",
    "pittsburghsteelers",
]

KEYBOARD_ROWS = [
    "1234567890",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "qwertzuiop",
    "azertyuiop",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "qazwsxedcrfvtgbyhnujmikolp",
    "zaq1xsw2cde3vfr4bgt5nhy6mju7",
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
]
SUFFIXES = ["", "1", "12", "123", "1234", "12345", "123456", "2024", "2025", "2026", "69", "007"]


def skeleton(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def main() -> None:
    entries: set[str] = set()
    entries.update(skeleton(w) + s for w in WORDS for s in SUFFIXES)
    entries.update(skeleton(p) for p in PHRASES)
    # Two common words together ("sunshinebutterfly", "letmeinpassword").
    entries.update(a + b for a, b in itertools.permutations(WORDS, 2) if len(a + b) >= 12)
    # Runs along the keyboard, the alphabet and the digits, forwards and backwards.
    for row in KEYBOARD_ROWS:
        for text in (row * 3, row[::-1] * 3):
            for length in range(6, 31):
                entries.add(text[:length])
    for start in range(10):
        digits = "1234567890" * 4
        entries.update(digits[start : start + n] for n in range(6, 31))
        entries.update(digits[::-1][start : start + n] for n in range(6, 31))
    lines = sorted(e for e in entries if len(e) >= 6)
    header = [
        "# Common passwords, as skeletons (lower case, letters and digits only), one a line.",
        "# Generated by tools/make-common-passwords.py; public domain (CC0-1.0).",
    ]
    OUT.write_text("\n".join(header + lines) + "\n")
    print(f"{len(lines)} entries written to {OUT}")


if __name__ == "__main__":
    main()

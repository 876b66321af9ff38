"""Sensitive-term groups used by the bias check: group -> subgroup -> words.

Single lower-case words, matched against the word tokens of an input (``text.words``). Words
that are mostly used in other senses in agent traffic are left out on purpose ("old" as in "old
password", "senior" as in "senior engineer", "white"/"black" as colours).
"""
from __future__ import annotations

TERM_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "gender": {
        "female": ("she", "her", "hers", "herself", "woman", "women", "girl", "girls", "female", "mother",
                   "mom", "wife", "daughter", "sister", "lady", "ladies", "mrs", "ms", "grandmother", "aunt",
                   "niece", "girlfriend"),
        "male": ("he", "him", "his", "himself", "man", "men", "boy", "boys", "male", "father", "dad",
                 "husband", "son", "brother", "gentleman", "gentlemen", "mr", "grandfather", "uncle",
                 "nephew", "boyfriend"),
    },
    "age": {
        "young": ("young", "youth", "teen", "teens", "teenager", "teenagers", "kid", "kids", "child",
                  "children", "millennial", "millennials", "adolescent"),
        "older": ("elderly", "older", "seniors", "retired", "retiree", "retirees", "pensioner", "pensioners",
                  "grandparent", "grandparents", "boomer", "boomers"),
    },
    "nationality_ethnicity": {
        "american": ("american", "americans"),
        "african": ("african", "africans", "nigerian", "kenyan", "ghanaian", "ethiopian"),
        "arab": ("arab", "arabs", "saudi", "egyptian", "syrian", "iraqi"),
        "asian": ("asian", "asians", "chinese", "japanese", "korean", "vietnamese", "filipino"),
        "european": ("european", "europeans", "german", "french", "italian", "british", "polish"),
        "hispanic_latino": ("hispanic", "latino", "latina", "latinos", "mexican", "mexicans", "colombian"),
        "south_asian": ("indian", "indians", "pakistani", "bangladeshi", "lankan"),
    },
    "religion": {
        "christian": ("christian", "christians", "catholic", "catholics", "protestant", "church"),
        "muslim": ("muslim", "muslims", "islam", "islamic", "mosque"),
        "jewish": ("jewish", "jew", "jews", "judaism", "synagogue"),
        "hindu": ("hindu", "hindus", "hinduism"),
        "buddhist": ("buddhist", "buddhists", "buddhism"),
        "atheist": ("atheist", "atheists"),
    },
    "disability": {
        "disability": ("disabled", "disability", "disabilities", "wheelchair", "blind", "deaf", "autistic",
                       "handicapped"),
    },
}

# word -> (group, subgroup)
TERM_INDEX: dict[str, tuple[str, str]] = {
    word: (group, subgroup)
    for group, subgroups in TERM_GROUPS.items()
    for subgroup, words in subgroups.items()
    for word in words
}

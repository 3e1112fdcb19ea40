"""Supplier names per country: real-world shapes with commas, quotes and non-ASCII letters.

Names are what breaks naive CSV writers and readers, so the generator makes sure the
landing files carry `Co., Ltd.`, `"Golden Star"` and `Präzisionsteile` from the start.
No name contains a line break: a dirty row's line number is its physical line.
"""

from __future__ import annotations

import numpy as np

# One entry per country in cohorts.COUNTRIES order: (stems, legal suffixes).
_NAME_PARTS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("Zhejiang Huali", "Shenzhen Topband", "Ningbo Jiale", "Guangzhou Meixin", "Yiwu Hengda",
      "Xiamen Sunrise"), ("Trading Co., Ltd.", "Industrial Co., Ltd.", "Technology Co., Ltd.")),
    (("Shree Ganesh", "Bharat", "Sai Krishna", '"Lakshmi"', "Mahalaxmi", "Sundaram"),
     ("Exports Pvt. Ltd.", "Industries", "Overseas, LLP")),
    (("Nguyễn Phát", "Hòa Bình", "Đông Á", "Thành Công", "Việt Tiến", "Phú Quý"),
     ("Co., Ltd", "JSC", "Trading Co., Ltd")),
    (("Çelik", "Öztürk", "Yıldız", "Şahin", "Güneş", "Doğan"),
     ("Makina A.Ş.", "Tekstil Ltd. Şti.", "Dış Ticaret A.Ş.")),
    (("Acme", "Pioneer", '"Blue Ridge"', "O'Neill", "Lakeside", "Summit"),
     ("Supply, Inc.", "LLC", "Industrial Corp.")),
    (("Müller", "Schäfer", "Weiß", "Köhler", "Groß & Söhne", "Bäumer"),
     ("Präzisionsteile GmbH", "Handels GmbH", "Technik AG")),
    (("Industrias Peñafiel", "Grupo Núñez", "Comercializadora Ávila", "Maquinados León",
      '"El Águila"', "Distribuidora Ibáñez"), ("S.A. de C.V.", "S. de R.L.", "S.A.")),
    (("Indústria São João", "Comércio Araújo", "Têxtil Conceição", "Metalúrgica Paraná",
      "Irmãos Gonçalves", "Plásticos Ribeirão"), ("Ltda.", "S.A.", "EIRELI")),
)
_BRANDS = ("Golden Star", "Evergreen", "Silverline", "Red Maple", "Bright", "Oriental",
           "Nova", "Atlas", "Prime", "Unity", "Harbor", "Apex")


def draw_names(country: np.ndarray, rng: np.random.Generator) -> list[str]:
    """One name per entry of `country` (a country code index): stem, optional brand, suffix."""
    stem_pick = rng.integers(0, 6, len(country))
    suffix_pick = rng.integers(0, 3, len(country))
    brand_pick = rng.integers(-4, len(_BRANDS), len(country))  # negative: no brand word
    names = []
    # one Python step per supplier (thousands), never per order
    for c, s, x, b in zip(country.tolist(), stem_pick.tolist(), suffix_pick.tolist(), brand_pick.tolist()):
        stems, suffixes = _NAME_PARTS[c]
        brand = f" {_BRANDS[b]}" if b >= 0 else ""
        names.append(f"{stems[s]}{brand} {suffixes[x]}")
    return names

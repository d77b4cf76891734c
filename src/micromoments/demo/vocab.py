"""The words of the demo world: products, brands, DIY tasks, garden topics, places, typos.

Over 500 lines because it is data (word lists and products), not logic.

Plain data, kept in one module so the query grammar (`queries.py`) and the page builder
(`journey.py`) speak about the same things. Projects tie them together, so one person's
journey stays coherent: a `patio` project searches patio questions, patio how-tos and
patio products.

>>> PRODUCTS["cordless drill"].category
'power-tools'
>>> "lay patio slabs" in [t.base for t in PROJECTS["patio"].tasks]
True
"""

from __future__ import annotations

from dataclasses import dataclass

BRAND = "greenhaven"
SITE = "https://www.greenhaven.example"
APP_NAME = "Greenhaven"


@dataclass(frozen=True)
class Product:
    name: str
    category: str
    price: float          # typical unit price in the store's currency
    specs: tuple[str, ...]  # size/voltage/colour words that follow the name in queries


# name | category | price | specs (comma separated)
_PRODUCTS = """
cordless drill|power-tools|89|18v,12v,brushless,with 2 batteries,body only
combi drill|power-tools|119|18v,brushless,kit
impact driver|power-tools|99|18v,body only,brushless
sds drill|power-tools|139|corded,18v
circular saw|power-tools|109|185mm,18v
jigsaw|power-tools|69|corded,18v,pendulum
orbital sander|power-tools|59|125mm,corded
multi tool|power-tools|79|oscillating,18v
angle grinder|power-tools|64|115mm,125mm
drill bits|power-tools|19|masonry,hss,set,tile
lawn mower|garden-power|229|cordless,petrol,electric,self propelled,37cm
robot lawn mower|garden-power|799|500m2,wifi
strimmer|garden-power|79|cordless,electric,petrol
hedge trimmer|garden-power|99|cordless,50cm,electric
pressure washer|garden-power|159|130 bar,150 bar,electric
leaf blower|garden-power|89|cordless,vacuum
chainsaw|garden-power|179|cordless,petrol,35cm
multi purpose compost|compost|7|50l,40l,peat free,3 for 2
ericaceous compost|compost|8|50l,peat free
topsoil|compost|4|25l,bulk bag
bark mulch|compost|6|70l,bulk bag
grass seed|lawn-care|15|1kg,5kg,shade,hard wearing
lawn feed|lawn-care|18|weed and feed,autumn,spreader
moss killer|lawn-care|14|5kg,liquid
weed killer|lawn-care|11|1l,concentrate,pet safe,path
slug pellets|lawn-care|6|organic,pet safe
tulip bulbs|plants|9|pack of 20,mixed,red
rose bush|plants|15|climbing,red,patio
lavender plant|plants|8|2l pot,hidcote
olive tree|plants|69|1.2m,standard
tomato plants|plants|4|cherry,pack of 6
hydrangea|plants|22|blue,white,3l
bird feeder|garden-decor|19|hanging,squirrel proof
solar lights|garden-decor|25|string,stake,pack of 10
plant pots|garden-decor|12|large,terracotta,plastic,set of 3
raised bed|garden-building|59|wooden,metal,2m
greenhouse|garden-building|399|6x4,8x6,polycarbonate,aluminium
shed|garden-building|499|6x4,8x6,metal,apex
fence panels|garden-building|32|6x6,6x5,lap,closeboard
fence posts|garden-building|14|2.4m,concrete,timber
decking boards|garden-building|9|2.4m,3.6m,composite,grooved
patio slabs|landscaping|28|600x600,sandstone,grey,porcelain
gravel|landscaping|5|20mm,bulk bag,pea shingle
artificial grass|landscaping|18|per m2,30mm,40mm
cement|building|7|25kg,rapid set
sand|building|4|sharp,building,bulk bag
plasterboard|building|11|12.5mm,2.4m,moisture resistant
paving sealer|landscaping|22|5l,wet look
garden furniture set|outdoor-living|349|4 seater,rattan,6 seater,wooden
parasol|outdoor-living|59|2.5m,cantilever
bbq|outdoor-living|199|gas,charcoal,kettle,3 burner
fire pit|outdoor-living|89|steel,with grill
emulsion paint|paint|29|white,magnolia,grey,sage green,matt,5l,2.5l
fence paint|paint|16|5l,dark green,brown,shed and fence
gloss paint|paint|18|white,750ml,quick dry
wood stain|paint|21|oak,walnut,2.5l,decking
masonry paint|paint|39|white,10l,smooth
paint roller|decorating|9|9 inch,set,extension pole
masking tape|decorating|4|24mm,48mm
wallpaper|decorating|22|grey,textured,peel and stick
wallpaper paste|decorating|6|ready mixed,10 roll
wall filler|decorating|7|ready mixed,1kg,flexible
laminate flooring|flooring|18|oak,grey,8mm,12mm,per m2
underlay|flooring|3|5mm,per m2
floor tiles|tiling|24|porcelain,grey,600x600,per m2
tile adhesive|tiling|16|20kg,ready mixed,rapid set
grout|tiling|9|white,grey,5kg
silicone sealant|tiling|6|white,clear,bathroom
kitchen tap|plumbing|69|mixer,chrome,black,pull out
shower head|plumbing|29|rainfall,chrome,high pressure
toilet seat|plumbing|29|soft close,white,wooden
radiator|heating|89|600mm,double panel,white
smart thermostat|heating|169|wifi,hive,nest
led bulbs|electrical|8|e27,gu10,pack of 4,warm white
security light|electrical|34|pir,led,motion sensor
smoke alarm|electrical|14|battery,mains,10 year
extension lead|electrical|12|4 gang,10m
screws|fixings|9|box of 200,wood,4x40,plasterboard
wall plugs|fixings|4|red,brown,assorted
spirit level|hand-tools|14|600mm,1200mm
tape measure|hand-tools|9|5m,8m
ladder|hand-tools|89|3 way,telescopic,aluminium
step ladder|hand-tools|39|3 step,4 step
spade|hand-tools|24|stainless,border
secateurs|hand-tools|18|bypass,anvil
wheelbarrow|hand-tools|69|90l,steel
garden hose|watering|24|30m,expandable,50m
hose reel|watering|39|wall mounted,with 30m hose
watering can|watering|9|10l,metal
water butt|watering|45|200l,with stand
"""


def _parse_products(text: str) -> dict[str, Product]:
    out: dict[str, Product] = {}
    for line in text.strip().splitlines():
        name, category, price, specs = line.split("|")
        out[name] = Product(name, category, float(price), tuple(s.strip() for s in specs.split(",")))
    return out


PRODUCTS: dict[str, Product] = _parse_products(_PRODUCTS)

BRANDS: dict[str, tuple[str, ...]] = {
    "power-tools": ("bosch", "makita", "dewalt", "ryobi", "black and decker", "einhell", "milwaukee"),
    "garden-power": ("flymo", "bosch", "stihl", "ryobi", "einhell", "mountfield", "karcher"),
    "compost": ("westland", "miracle-gro", "levington", "greenhaven"),
    "lawn-care": ("evergreen", "westland", "miracle-gro", "roundup", "scotts"),
    "plants": ("greenhaven",),
    "garden-decor": ("greenhaven", "smart garden", "peckish"),
    "garden-building": ("forest garden", "rowlinson", "keter", "palram", "greenhaven"),
    "landscaping": ("marshalls", "bradstone", "greenhaven"),
    "building": ("blue circle", "tarmac", "british gypsum", "knauf"),
    "outdoor-living": ("weber", "char-broil", "keter", "greenhaven"),
    "paint": ("dulux", "crown", "ronseal", "cuprinol", "johnstones", "valspar", "sandtex"),
    "decorating": ("harris", "purdy", "graham and brown", "polycell", "tesa"),
    "flooring": ("quick-step", "greenhaven"),
    "tiling": ("mapei", "unibond", "everbuild", "bal"),
    "plumbing": ("bristan", "grohe", "triton", "mira"),
    "heating": ("hive", "nest", "honeywell", "stelrad"),
    "electrical": ("philips", "ring", "firex", "masterplug", "greenhaven"),
    "fixings": ("rawlplug", "timco", "spax"),
    "hand-tools": ("stanley", "spear and jackson", "fiskars", "wolf-garten", "draper"),
    "watering": ("hozelock", "gardena", "greenhaven"),
}

# Model-code style entity queries ("bosch psb 18", "makita dhp482"): brand -> codes.
MODELS: dict[str, tuple[str, ...]] = {
    "bosch": ("psb 18 li-2", "advancedimpact 18", "easydrill 1200", "rotak 32", "aqt 35-12"),
    "makita": ("dhp482", "dhp453", "dtd152", "dlm330", "dur181"),
    "dewalt": ("dcd796", "dcf887", "dcd778", "dcs570"),
    "ryobi": ("r18pd3", "one+ r18dd3", "ry18lmx37a", "rlt1831"),
    "flymo": ("easimow 300r", "speedi-mo 360c", "contour 500e"),
    "karcher": ("k2", "k4 power control", "k5 premium"),
    "weber": ("spirit ii e-310", "master-touch 57cm", "genesis e-325s"),
    "hive": ("thermostat mini", "active heating 2"),
    "nest": ("learning thermostat", "thermostat e"),
    "stihl": ("fsa 57", "hsa 26", "msa 120"),
}


@dataclass(frozen=True)
class Task:
    base: str             # "lay patio slabs"
    gerund: str           # "laying patio slabs"
    noun: str             # "patio" (for "diy patio", "patio ideas")


@dataclass(frozen=True)
class Project:
    """One home or garden project: the products, tasks and questions that belong to it."""

    name: str
    products: tuple[str, ...]
    tasks: tuple[Task, ...]
    questions: tuple[str, ...]      # know-questions, complete ("what is the ph of ericaceous compost")
    garden: bool


def _tasks(text: str) -> tuple[Task, ...]:
    out = []
    for line in text.strip().splitlines():
        base, gerund, noun = (s.strip() for s in line.split("|"))
        out.append(Task(base, gerund, noun))
    return tuple(out)


def _lines(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.strip().splitlines() if s.strip())


PROJECTS: dict[str, Project] = {
    p.name: p
    for p in (
        Project(
            "patio",
            ("patio slabs", "sand", "cement", "paving sealer", "pressure washer", "spirit level", "gravel"),
            _tasks("""
                lay patio slabs|laying patio slabs|patio
                clean a patio|cleaning a patio|patio cleaning
                point a patio|pointing a patio|patio pointing
                seal patio slabs|sealing patio slabs|patio sealing
                lay a gravel path|laying a gravel path|gravel path
                mix cement by hand|mixing cement by hand|cement mixing
            """),
            _lines("""
                can you lay patio slabs on sand
                how much sand do i need for a patio
                what is the best jointing compound for patios
                how long does cement take to set
                how many patio slabs do i need for 20m2
                porcelain vs sandstone patio slabs
                do i need planning permission for a patio
                how thick should a patio base be
            """),
            True,
        ),
        Project(
            "painting",
            ("emulsion paint", "gloss paint", "paint roller", "masking tape", "wall filler", "masonry paint"),
            _tasks("""
                paint a ceiling|painting a ceiling|ceiling painting
                paint a room|painting a room|room painting
                fill holes in walls|filling holes in walls|wall filling
                paint skirting boards|painting skirting boards|skirting boards
                paint exterior walls|painting exterior walls|exterior painting
                cut in with a brush|cutting in with a brush|cutting in
            """),
            _lines("""
                how much paint do i need for a room
                what is the difference between emulsion and gloss
                how long does emulsion take to dry
                can you paint over wallpaper
                do i need primer for new plaster
                what colour goes with sage green
                matt vs silk emulsion for walls
                how many coats of paint on a new wall
            """),
            False,
        ),
        Project(
            "lawn",
            ("lawn mower", "grass seed", "lawn feed", "moss killer", "strimmer", "robot lawn mower", "artificial grass"),
            _tasks("""
                sow grass seed|sowing grass seed|lawn seeding
                lay turf|laying turf|turf laying
                get rid of moss in a lawn|getting rid of moss in a lawn|moss removal
                scarify a lawn|scarifying a lawn|lawn scarifying
                lay artificial grass|laying artificial grass|artificial grass
                edge a lawn|edging a lawn|lawn edging
            """),
            _lines("""
                best time to sow grass seed
                when to feed the lawn
                why is my lawn going brown
                how often should i mow my lawn
                how long does grass seed take to grow
                is lawn feed safe for dogs
                what height should i cut my grass
                cordless vs petrol lawn mower
            """),
            True,
        ),
        Project(
            "planting",
            ("tulip bulbs", "rose bush", "lavender plant", "multi purpose compost", "ericaceous compost",
             "plant pots", "hydrangea", "tomato plants", "secateurs", "spade"),
            _tasks("""
                plant tulip bulbs|planting tulip bulbs|bulb planting
                prune roses|pruning roses|rose pruning
                repot a houseplant|repotting a houseplant|repotting
                grow tomatoes from seed|growing tomatoes from seed|tomato growing
                take lavender cuttings|taking lavender cuttings|lavender cuttings
                plant a hedge|planting a hedge|hedge planting
            """),
            _lines("""
                what is the ph of ericaceous compost
                best time to plant tulips
                when to prune roses
                how deep to plant tulip bulbs
                are hydrangeas poisonous to cats
                why are my tomato leaves turning yellow
                what plants like ericaceous compost
                how often should i water tomato plants
                what to plant in september
                how to tell if compost is peat free
                which plants grow well in shade
                what is the best compost for blueberries
            """),
            True,
        ),
        Project(
            "fencing",
            ("fence panels", "fence posts", "fence paint", "wood stain", "postcrete", "decking boards"),
            _tasks("""
                put up a fence panel|putting up a fence panel|fence panel
                paint a fence|painting a fence|fence painting
                replace a fence post|replacing a fence post|fence post
                build decking|building decking|decking
                stain decking|staining decking|decking stain
                repair a fence panel|repairing a fence panel|fence repair
            """),
            _lines("""
                how long does fence paint take to dry
                can you paint a fence in winter
                how deep should fence posts be
                what is the best wood for decking
                composite vs timber decking
                who owns the fence on the left
                how many fence panels do i need
                is fence paint safe for plants
            """),
            True,
        ),
        Project(
            "bathroom",
            ("floor tiles", "tile adhesive", "grout", "silicone sealant", "shower head", "toilet seat", "kitchen tap"),
            _tasks("""
                tile a bathroom wall|tiling a bathroom wall|bathroom tiling
                regrout tiles|regrouting tiles|regrouting
                reseal a shower|resealing a shower|shower sealing
                fix a leaking tap|fixing a leaking tap|leaking tap
                replace a toilet seat|replacing a toilet seat|toilet seat
                unblock a sink|unblocking a sink|blocked sink
                cut tiles without a tile cutter|cutting tiles without a tile cutter|tile cutting
            """),
            _lines("""
                can you tile over tiles
                how long does grout take to dry
                what is the difference between tile adhesive and grout
                how much tile adhesive do i need per m2
                why does my tap keep dripping
                what size tiles for a small bathroom
                is silicone sealant waterproof
            """),
            False,
        ),
        Project(
            "tools",
            ("cordless drill", "combi drill", "impact driver", "sds drill", "jigsaw", "drill bits", "screws",
             "wall plugs", "multi tool", "circular saw"),
            _tasks("""
                put up a shelf|putting up a shelf|shelf fitting
                drill into tiles|drilling into tiles|tile drilling
                hang a heavy mirror|hanging a heavy mirror|mirror hanging
                use a jigsaw|using a jigsaw|jigsaw
                change a drill bit|changing a drill bit|drill bits
                fix plasterboard to a wall|fixing plasterboard to a wall|plasterboarding
            """),
            _lines("""
                what is a combi drill
                combi drill vs impact driver
                what drill bit for brick
                what size wall plug for a 5mm screw
                what is the difference between sds and hammer drill
                brushless vs brushed drill
                best cordless drill for beginners
                what screws for plasterboard
            """),
            False,
        ),
        Project(
            "outdoor-living",
            ("garden furniture set", "parasol", "bbq", "fire pit", "solar lights", "greenhouse", "shed",
             "raised bed", "bird feeder"),
            _tasks("""
                build a raised bed|building a raised bed|raised bed
                assemble a greenhouse|assembling a greenhouse|greenhouse
                build a shed base|building a shed base|shed base
                clean a bbq|cleaning a bbq|bbq cleaning
                treat a shed|treating a shed|shed treatment
                install solar lights|installing solar lights|garden lighting
            """),
            _lines("""
                do i need planning permission for a shed
                gas vs charcoal bbq
                what is the best greenhouse for a small garden
                how to stop rattan furniture going mouldy
                polycarbonate vs glass greenhouse
                how big should a raised bed be
                what wood is best for a raised bed
            """),
            True,
        ),
        Project(
            "home-fix",
            ("radiator", "smart thermostat", "led bulbs", "security light", "smoke alarm", "extension lead",
             "ladder", "step ladder", "wallpaper", "wallpaper paste", "laminate flooring", "underlay"),
            _tasks("""
                bleed a radiator|bleeding a radiator|radiator bleeding
                install a smart thermostat|installing a smart thermostat|smart thermostat
                change a light fitting|changing a light fitting|light fitting
                hang wallpaper|hanging wallpaper|wallpapering
                remove wallpaper|removing wallpaper|wallpaper removal
                lay laminate flooring|laying laminate flooring|laminate flooring
                fit a smoke alarm|fitting a smoke alarm|smoke alarm
            """),
            _lines("""
                what is the best smart thermostat
                hive vs nest thermostat
                how often should you bleed radiators
                do i need underlay for laminate
                what wattage led bulb replaces 60w
                is it safe to daisy chain extension leads
                how long does wallpaper paste take to dry
            """),
            False,
        ),
    )
}

# "postcrete" is named by a project but sold under building; give it a product entry.
PRODUCTS.setdefault("postcrete", Product("postcrete", "building", 7.5, ("20kg", "rapid set")))

# Everyday repairs, for "fix X" / "X fix video" queries.
BROKEN = _lines("""
    leaking tap
    dripping shower
    squeaky door
    sticking door
    blocked drain
    loose door handle
    cracked tile
    running toilet
    wobbly fence post
    broken fence panel
    flickering light
    cold radiator
    peeling paint
    hole in plasterboard
""")

TOOLS_TO_USE = ("pressure washer", "jigsaw", "tile cutter", "strimmer", "sds drill", "paint sprayer",
                "multi tool", "spirit level", "hedge trimmer", "angle grinder")

STORE_TYPES = ("garden centre", "diy store", "hardware store", "builders merchant", "plant nursery",
               "paint shop", "tool shop", "garden center", "home improvement store")

DAYS = ("sunday", "saturday", "today", "tomorrow", "bank holiday monday", "boxing day",
        "good friday", "easter sunday", "christmas eve", "new years day")

PETS = ("dogs", "cats", "pets", "rabbits", "children")
CHEMICALS = ("weed killer", "slug pellets", "lawn feed", "moss killer", "fence paint", "decking stain",
             "bark mulch", "cocoa mulch")
SYMPTOMS = _lines("""
    my lawn going yellow
    my paint bubbling
    my fence post rotting
    my grout turning black
    my hydrangea not flowering
    my lavender going woody
    my drill not holding the bit
    my pressure washer pulsing
    my tomato plants wilting
    my radiator cold at the top
""")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december")
GARDEN_SPOTS = ("a north facing garden", "a shady border", "clay soil", "a small garden", "pots",
                "a windy garden", "a south facing wall", "a balcony", "sandy soil")
DRYING = ("fence paint", "emulsion", "gloss paint", "grout", "tile adhesive", "wood stain", "cement",
          "wall filler", "masonry paint", "silicone sealant")
AMOUNTS = (("compost", "a raised bed"), ("paint", "a 4x4 room"), ("gravel", "a driveway"),
           ("grass seed", "100m2"), ("sand", "a patio"), ("topsoil", "a lawn"), ("tile adhesive", "a bathroom"),
           ("decking boards", "a 3x4 deck"), ("bark mulch", "a border"))
USES = (("compost", "tomatoes"), ("compost", "blueberries"), ("paint", "bathroom walls"), ("paint", "radiators"),
        ("drill bit", "tiles"), ("drill bit", "concrete"), ("screws", "decking"), ("grass seed", "shade"),
        ("lawn mower", "a small garden"), ("ladder", "a two storey house"), ("saw", "cutting laminate"),
        ("sealant", "a shower"), ("wood stain", "garden furniture"), ("plants", "a privacy hedge"))

VOICE_PREFIXES = ("ok google", "hey google", "hey siri", "alexa", "siri")

# Real-world misspellings searchers make, tried before random keyboard typos.
MISSPELLINGS: dict[str, tuple[str, ...]] = {
    "compost": ("compst", "composte"), "ericaceous": ("ericacious", "ericaceus", "erica"),
    "centre": ("center", "cente"), "secateurs": ("secatuers", "secaters"), "strimmer": ("strimer", "strimmr"),
    "thermostat": ("thermastat", "thermostst"), "wallpaper": ("wall paper", "walpaper"),
    "patio": ("pation", "paito"), "greenhaven": ("green haven", "grenhaven", "greenhavan", "greenhavens"),
    "laminate": ("laminet", "lamenate"), "emulsion": ("emultion", "emulsoin"), "hydrangea": ("hydrangia", "hydranger"),
    "lavender": ("lavendar", "lavander"), "radiator": ("radiater", "raditor"), "drill": ("dril", "drlll"),
    "greenhouse": ("green house", "greenhose"), "mower": ("mover", "mowr"), "adhesive": ("adhesve", "adhessive"),
    "plasterboard": ("plaster board", "plasterbord"), "decking": ("deckin", "decing"),
    "opening": ("openning", "opning"), "directions": ("directons", "drections"), "tulip": ("tulipe", "tullip"),
    "sealant": ("sealent", "selant"), "pressure": ("presure", "pressur"), "screws": ("screwz", "scews"),
    "cordless": ("cordles", "cordlss"), "fence": ("fense", "fance"), "paint": ("pait", "piant"),
}

FIRST_NAMES = ("amelia", "oliver", "isla", "george", "ava", "noah", "mia", "arthur", "freya", "leo", "emily",
               "harry", "grace", "oscar", "sophie", "jack", "chloe", "liam", "emma", "james", "aoife", "sean",
               "niamh", "conor", "olivia", "ethan", "mason", "ella", "lucas", "maya", "daniel", "priya", "mohammed",
               "fatima", "hannah", "tom", "kate", "sam", "ruth", "dev")
EMAIL_DOMAINS = ("example.com", "mail.example", "example.org", "post.example")

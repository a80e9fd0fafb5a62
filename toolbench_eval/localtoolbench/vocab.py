"""Word lists the database is built from: real places, invented but plausible names.

Only data lives here. Names are combined deterministically by `database.py`; every list is
ordered, so a seed always yields the same world.
"""

# (city, country, ISO country code, latitude, longitude, timezone)
CITIES: tuple[tuple[str, str, str, float, float, str], ...] = (
    ("London", "United Kingdom", "GB", 51.51, -0.13, "Europe/London"),
    ("Paris", "France", "FR", 48.86, 2.35, "Europe/Paris"),
    ("Berlin", "Germany", "DE", 52.52, 13.41, "Europe/Berlin"),
    ("Madrid", "Spain", "ES", 40.42, -3.70, "Europe/Madrid"),
    ("Lisbon", "Portugal", "PT", 38.72, -9.14, "Europe/Lisbon"),
    ("Rome", "Italy", "IT", 41.90, 12.50, "Europe/Rome"),
    ("Amsterdam", "Netherlands", "NL", 52.37, 4.90, "Europe/Amsterdam"),
    ("Vienna", "Austria", "AT", 48.21, 16.37, "Europe/Vienna"),
    ("Prague", "Czechia", "CZ", 50.08, 14.44, "Europe/Prague"),
    ("Warsaw", "Poland", "PL", 52.23, 21.01, "Europe/Warsaw"),
    ("Stockholm", "Sweden", "SE", 59.33, 18.07, "Europe/Stockholm"),
    ("Oslo", "Norway", "NO", 59.91, 10.75, "Europe/Oslo"),
    ("Copenhagen", "Denmark", "DK", 55.68, 12.57, "Europe/Copenhagen"),
    ("Helsinki", "Finland", "FI", 60.17, 24.94, "Europe/Helsinki"),
    ("Dublin", "Ireland", "IE", 53.35, -6.26, "Europe/Dublin"),
    ("Athens", "Greece", "GR", 37.98, 23.73, "Europe/Athens"),
    ("Istanbul", "Turkey", "TR", 41.01, 28.98, "Europe/Istanbul"),
    ("Cairo", "Egypt", "EG", 30.04, 31.24, "Africa/Cairo"),
    ("Nairobi", "Kenya", "KE", -1.29, 36.82, "Africa/Nairobi"),
    ("Lagos", "Nigeria", "NG", 6.52, 3.38, "Africa/Lagos"),
    ("Cape Town", "South Africa", "ZA", -33.92, 18.42, "Africa/Johannesburg"),
    ("Marrakesh", "Morocco", "MA", 31.63, -7.99, "Africa/Casablanca"),
    ("Dubai", "United Arab Emirates", "AE", 25.20, 55.27, "Asia/Dubai"),
    ("Mumbai", "India", "IN", 19.08, 72.88, "Asia/Kolkata"),
    ("Delhi", "India", "IN", 28.70, 77.10, "Asia/Kolkata"),
    ("Bangkok", "Thailand", "TH", 13.76, 100.50, "Asia/Bangkok"),
    ("Singapore", "Singapore", "SG", 1.35, 103.82, "Asia/Singapore"),
    ("Jakarta", "Indonesia", "ID", -6.21, 106.85, "Asia/Jakarta"),
    ("Hanoi", "Vietnam", "VN", 21.03, 105.85, "Asia/Bangkok"),
    ("Seoul", "South Korea", "KR", 37.57, 126.98, "Asia/Seoul"),
    ("Tokyo", "Japan", "JP", 35.68, 139.69, "Asia/Tokyo"),
    ("Osaka", "Japan", "JP", 34.69, 135.50, "Asia/Tokyo"),
    ("Beijing", "China", "CN", 39.90, 116.41, "Asia/Shanghai"),
    ("Shanghai", "China", "CN", 31.23, 121.47, "Asia/Shanghai"),
    ("Sydney", "Australia", "AU", -33.87, 151.21, "Australia/Sydney"),
    ("Melbourne", "Australia", "AU", -37.81, 144.96, "Australia/Melbourne"),
    ("Auckland", "New Zealand", "NZ", -36.85, 174.76, "Pacific/Auckland"),
    ("Toronto", "Canada", "CA", 43.65, -79.38, "America/Toronto"),
    ("Vancouver", "Canada", "CA", 49.28, -123.12, "America/Vancouver"),
    ("New York", "United States", "US", 40.71, -74.01, "America/New_York"),
    ("Chicago", "United States", "US", 41.88, -87.63, "America/Chicago"),
    ("San Francisco", "United States", "US", 37.77, -122.42, "America/Los_Angeles"),
    ("Seattle", "United States", "US", 47.61, -122.33, "America/Los_Angeles"),
    ("Miami", "United States", "US", 25.76, -80.19, "America/New_York"),
    ("Denver", "United States", "US", 39.74, -104.99, "America/Denver"),
    ("Mexico City", "Mexico", "MX", 19.43, -99.13, "America/Mexico_City"),
    ("Bogota", "Colombia", "CO", 4.71, -74.07, "America/Bogota"),
    ("Lima", "Peru", "PE", -12.05, -77.04, "America/Lima"),
    ("Santiago", "Chile", "CL", -33.45, -70.67, "America/Santiago"),
    ("Buenos Aires", "Argentina", "AR", -34.60, -58.38, "America/Argentina/Buenos_Aires"),
    ("Sao Paulo", "Brazil", "BR", -23.55, -46.63, "America/Sao_Paulo"),
    ("Rio de Janeiro", "Brazil", "BR", -22.91, -43.17, "America/Sao_Paulo"),
)

# (name, ISO code, capital, continent, currency code, main language, calling code)
COUNTRIES: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    ("United Kingdom", "GB", "London", "Europe", "GBP", "English", "+44"),
    ("France", "FR", "Paris", "Europe", "EUR", "French", "+33"),
    ("Germany", "DE", "Berlin", "Europe", "EUR", "German", "+49"),
    ("Spain", "ES", "Madrid", "Europe", "EUR", "Spanish", "+34"),
    ("Portugal", "PT", "Lisbon", "Europe", "EUR", "Portuguese", "+351"),
    ("Italy", "IT", "Rome", "Europe", "EUR", "Italian", "+39"),
    ("Netherlands", "NL", "Amsterdam", "Europe", "EUR", "Dutch", "+31"),
    ("Austria", "AT", "Vienna", "Europe", "EUR", "German", "+43"),
    ("Czechia", "CZ", "Prague", "Europe", "CZK", "Czech", "+420"),
    ("Poland", "PL", "Warsaw", "Europe", "PLN", "Polish", "+48"),
    ("Sweden", "SE", "Stockholm", "Europe", "SEK", "Swedish", "+46"),
    ("Norway", "NO", "Oslo", "Europe", "NOK", "Norwegian", "+47"),
    ("Denmark", "DK", "Copenhagen", "Europe", "DKK", "Danish", "+45"),
    ("Finland", "FI", "Helsinki", "Europe", "EUR", "Finnish", "+358"),
    ("Ireland", "IE", "Dublin", "Europe", "EUR", "English", "+353"),
    ("Greece", "GR", "Athens", "Europe", "EUR", "Greek", "+30"),
    ("Turkey", "TR", "Ankara", "Asia", "TRY", "Turkish", "+90"),
    ("Egypt", "EG", "Cairo", "Africa", "EGP", "Arabic", "+20"),
    ("Kenya", "KE", "Nairobi", "Africa", "KES", "Swahili", "+254"),
    ("Nigeria", "NG", "Abuja", "Africa", "NGN", "English", "+234"),
    ("South Africa", "ZA", "Pretoria", "Africa", "ZAR", "Zulu", "+27"),
    ("Morocco", "MA", "Rabat", "Africa", "MAD", "Arabic", "+212"),
    ("United Arab Emirates", "AE", "Abu Dhabi", "Asia", "AED", "Arabic", "+971"),
    ("India", "IN", "New Delhi", "Asia", "INR", "Hindi", "+91"),
    ("Thailand", "TH", "Bangkok", "Asia", "THB", "Thai", "+66"),
    ("Singapore", "SG", "Singapore", "Asia", "SGD", "English", "+65"),
    ("Indonesia", "ID", "Jakarta", "Asia", "IDR", "Indonesian", "+62"),
    ("Vietnam", "VN", "Hanoi", "Asia", "VND", "Vietnamese", "+84"),
    ("South Korea", "KR", "Seoul", "Asia", "KRW", "Korean", "+82"),
    ("Japan", "JP", "Tokyo", "Asia", "JPY", "Japanese", "+81"),
    ("China", "CN", "Beijing", "Asia", "CNY", "Mandarin", "+86"),
    ("Australia", "AU", "Canberra", "Oceania", "AUD", "English", "+61"),
    ("New Zealand", "NZ", "Wellington", "Oceania", "NZD", "English", "+64"),
    ("Canada", "CA", "Ottawa", "North America", "CAD", "English", "+1"),
    ("United States", "US", "Washington", "North America", "USD", "English", "+1"),
    ("Mexico", "MX", "Mexico City", "North America", "MXN", "Spanish", "+52"),
    ("Colombia", "CO", "Bogota", "South America", "COP", "Spanish", "+57"),
    ("Peru", "PE", "Lima", "South America", "PEN", "Spanish", "+51"),
    ("Chile", "CL", "Santiago", "South America", "CLP", "Spanish", "+56"),
    ("Argentina", "AR", "Buenos Aires", "South America", "ARS", "Spanish", "+54"),
    ("Brazil", "BR", "Brasilia", "South America", "BRL", "Portuguese", "+55"),
)

# (code, name); USD rates are drawn around these anchors so conversions stay plausible.
CURRENCIES: tuple[tuple[str, str, float], ...] = (
    ("USD", "US Dollar", 1.0), ("EUR", "Euro", 0.92), ("GBP", "British Pound", 0.79),
    ("JPY", "Japanese Yen", 151.0), ("CHF", "Swiss Franc", 0.88), ("CAD", "Canadian Dollar", 1.36),
    ("AUD", "Australian Dollar", 1.52), ("NZD", "New Zealand Dollar", 1.66), ("CNY", "Chinese Yuan", 7.2),
    ("INR", "Indian Rupee", 83.2), ("KRW", "South Korean Won", 1340.0), ("SGD", "Singapore Dollar", 1.34),
    ("SEK", "Swedish Krona", 10.6), ("NOK", "Norwegian Krone", 10.8), ("DKK", "Danish Krone", 6.87),
    ("PLN", "Polish Zloty", 3.98), ("CZK", "Czech Koruna", 23.1), ("TRY", "Turkish Lira", 32.1),
    ("MXN", "Mexican Peso", 16.9), ("BRL", "Brazilian Real", 5.05), ("ZAR", "South African Rand", 18.7),
    ("AED", "UAE Dirham", 3.67), ("THB", "Thai Baht", 36.4), ("EGP", "Egyptian Pound", 47.3),
)

FIRST_NAMES = (
    "Ava", "Liam", "Mila", "Noah", "Zara", "Ethan", "Isla", "Omar", "Leah", "Marco", "Nina", "Hugo", "Elena",
    "Tariq", "Sofia", "Jonas", "Priya", "Mateo", "Clara", "Kenji", "Amara", "Felix", "Ingrid", "Rafael",
    "Yara", "Desmond", "Lucia", "Anton", "Freya", "Kwame", "Helena", "Ravi", "Beatrix", "Santiago", "Mei",
    "Oscar", "Ines", "Tobias", "Nadia", "Emil", "Greta", "Dario", "Aiko", "Malik", "Rosa", "Viktor",
    "Selin", "Pablo", "Astrid", "Jamal",
)
LAST_NAMES = (
    "Moreno", "Lindqvist", "Okafor", "Tanaka", "Fischer", "Costa", "Novak", "Haddad", "Brennan", "Duarte",
    "Kowalski", "Varga", "Sato", "Mendes", "Ivanova", "Quinn", "Castell", "Adeyemi", "Holm", "Rossi",
    "Petrov", "Nakamura", "Whitfield", "Almeida", "Berg", "Carvalho", "Dubois", "Esposito", "Farrow",
    "Galvez", "Hartmann", "Iqbal", "Jensen", "Kaur", "Laurent", "Mwangi", "Nilsen", "Ortega", "Park",
    "Reyes", "Sandoval", "Thorne", "Ueda", "Valdez", "Winters", "Yilmaz", "Zhou", "Abbott", "Blake", "Crane",
)

TITLE_ADJECTIVES = (
    "Silent", "Crimson", "Hidden", "Last", "Broken", "Golden", "Distant", "Electric", "Frozen", "Wild",
    "Midnight", "Paper", "Velvet", "Hollow", "Burning", "Quiet", "Restless", "Glass", "Scarlet", "Northern",
    "Fading", "Iron", "Lonely", "Secret", "Endless", "Savage", "Bright", "Drifting", "Forgotten", "Emerald",
)
TITLE_NOUNS = (
    "Harbor", "Garden", "Horizon", "Letter", "Kingdom", "River", "Echo", "Mirror", "Orchard", "Signal",
    "Lantern", "Voyage", "Empire", "Shadow", "Island", "Compass", "Winter", "Summit", "Circus", "Canyon",
    "Archive", "Frontier", "Tide", "Meridian", "Forest", "Station", "Carnival", "Orbit", "Cathedral", "Desert",
)

COMPANY_ROOTS = (
    "Norvex", "Altura", "Bramble", "Cobalt", "Dynamo", "Everline", "Fjord", "Granite", "Helio", "Indigo",
    "Juniper", "Kestrel", "Lumen", "Maple", "Nimbus", "Onyx", "Pioneer", "Quasar", "Redwood", "Summit",
    "Trident", "Umbra", "Vertex", "Willow", "Xenon", "Yonder", "Zephyr", "Aster", "Beacon", "Cascade",
    "Delta", "Ember", "Falcon", "Glacier", "Harbor", "Ion", "Jasper", "Keystone", "Lattice", "Monarch",
)
COMPANY_SUFFIXES = (
    "Systems", "Labs", "Holdings", "Energy", "Foods", "Robotics", "Pharma", "Logistics", "Networks", "Motors",
    "Analytics", "Media", "Capital", "Biotech", "Retail", "Airways",
)
SECTORS = ("Technology", "Healthcare", "Energy", "Financials", "Consumer", "Industrials", "Materials", "Utilities")
INDUSTRIES = ("Software", "Healthcare", "Manufacturing", "Finance", "Retail", "Education", "Logistics", "Media")

MOVIE_GENRES = ("Drama", "Comedy", "Thriller", "Science Fiction", "Animation", "Documentary", "Horror", "Romance")
BOOK_GENRES = ("Fiction", "Mystery", "Fantasy", "History", "Biography", "Science", "Poetry", "Self-Help")
MUSIC_GENRES = ("Rock", "Jazz", "Hip-Hop", "Electronic", "Folk", "Classical", "Pop", "Reggae")
PUBLISHERS = ("Harrow House", "Bluefield Press", "Northgate Books", "Quill & Crane", "Meridian Publishing")
RECORD_LABELS = ("Parallel Records", "Night Owl Music", "Stoneway", "Ivory Sound", "Bright Lane")
LANGUAGES = ("English", "French", "Spanish", "Japanese", "Korean", "German", "Italian", "Portuguese")

BAND_WORDS = ("Neon", "Velvet", "Atlas", "Paper", "Copper", "Lunar", "Static", "Wild", "Golden", "Echo")
BAND_NOUNS = ("Wolves", "Tides", "Pilots", "Gardens", "Machines", "Satellites", "Sparrows", "Engines", "Ghosts")

WEATHER_CONDITIONS = ("Sunny", "Partly cloudy", "Overcast", "Light rain", "Heavy rain", "Thunderstorm",
                      "Fog", "Snow", "Clear", "Windy")
POLLUTANTS = ("PM2.5", "PM10", "O3", "NO2")
MOON_PHASES = ("New Moon", "Waxing Crescent", "First Quarter", "Waxing Gibbous", "Full Moon",
               "Waning Gibbous", "Last Quarter", "Waning Crescent")

LEAGUES = ("Premier Division", "Coastal League", "Continental Cup League", "Northern Conference")
TEAM_MASCOTS = ("Lions", "Rovers", "United", "Falcons", "Mariners", "Wanderers", "Rangers", "Athletic",
                "Comets", "Titans")
POSITIONS = ("Goalkeeper", "Defender", "Midfielder", "Forward")

CUISINES = ("Italian", "Japanese", "Mexican", "Indian", "Thai", "French", "Greek", "Lebanese", "Korean", "Spanish")
INGREDIENTS = ("chicken", "salmon", "tofu", "beef", "shrimp", "lentils", "mushrooms", "eggplant", "chickpeas",
               "spinach", "pork", "potatoes", "rice", "noodles", "tomatoes", "cauliflower")
DISH_STYLES = ("Stew", "Curry", "Salad", "Tacos", "Risotto", "Stir-Fry", "Soup", "Skewers", "Bowl", "Pie",
               "Bake", "Pasta")
RESTAURANT_WORDS = ("Olive", "Saffron", "Bamboo", "Ember", "Harvest", "Lotus", "Copper Pot", "Blue Door",
                    "Little Fig", "Salt & Pepper", "Juniper", "Tamarind")
RESTAURANT_TYPES = ("Kitchen", "Bistro", "Grill", "House", "Table", "Cantina", "Brasserie", "Diner")

AIRLINES = (("Skyward Air", "SW"), ("Aurora Airlines", "AU"), ("Pacific Crest", "PC"), ("Meridian Air", "MR"),
            ("Northwind", "NW"), ("Solaris Airways", "SL"))
HOTEL_WORDS = ("Grand", "Riverside", "Harbor View", "Old Town", "Park", "Royal", "Central", "Garden",
               "Skyline", "Boutique")
HOTEL_TYPES = ("Hotel", "Suites", "Inn", "Residences", "Lodge")
AMENITIES = ("free wifi", "pool", "spa", "gym", "airport shuttle", "rooftop bar", "breakfast included",
             "pet friendly", "parking", "24h reception", "restaurant", "laundry service")

PRODUCT_CATEGORIES = {
    "Electronics": ("Wireless Earbuds", "Bluetooth Speaker", "Smartwatch", "USB-C Hub", "Mechanical Keyboard",
                    "Noise-Cancelling Headphones", "Portable Charger", "4K Webcam"),
    "Home & Kitchen": ("Espresso Machine", "Air Fryer", "Chef Knife", "Cast Iron Skillet", "Electric Kettle",
                       "Stand Mixer", "Rice Cooker"),
    "Sports & Outdoors": ("Yoga Mat", "Trail Running Shoes", "Camping Tent", "Insulated Bottle",
                          "Hiking Backpack", "Resistance Bands"),
    "Books & Media": ("E-Reader", "Vinyl Turntable", "Bookshelf Speaker", "Reading Lamp"),
    "Beauty": ("Hair Dryer", "Electric Toothbrush", "Skincare Set", "Beard Trimmer"),
}
BRANDS = ("Voltix", "Homely", "Peakline", "Auralis", "Kindra", "Brisa", "Tessel", "Nordic Oak")
REVIEW_OPENERS = ("Works exactly as described.", "Honestly better than I expected.", "Solid build quality.",
                  "Shipping was quick and the packaging was good.", "Not bad for the price.",
                  "I have used it daily for a month.", "Bought this as a gift.", "Mixed feelings overall.")
REVIEW_DETAILS = ("The battery easily lasts a full day.", "Setup took less than five minutes.",
                  "It is a bit heavier than the photos suggest.", "The instructions could be clearer.",
                  "Customer support answered within a day.", "It feels sturdy and well finished.",
                  "After two weeks one button started to stick.", "Great value compared to similar products.")

JOB_TITLES = ("Software Engineer", "Data Analyst", "Product Manager", "UX Designer", "Registered Nurse",
              "Accountant", "Marketing Specialist", "DevOps Engineer", "Sales Manager", "Data Scientist",
              "Teacher", "Logistics Coordinator")
JOB_LEVELS = ("Junior", "Mid", "Senior", "Lead")

FOODS = (
    ("Apple", 52, 0.3, 14.0, 0.2, 2.4), ("Banana", 89, 1.1, 22.8, 0.3, 2.6), ("Broccoli", 34, 2.8, 6.6, 0.4, 2.6),
    ("Chicken Breast", 165, 31.0, 0.0, 3.6, 0.0), ("Salmon", 208, 20.4, 0.0, 13.4, 0.0),
    ("Brown Rice", 111, 2.6, 23.0, 0.9, 1.8), ("Oats", 389, 16.9, 66.3, 6.9, 10.6), ("Almonds", 579, 21.2, 21.6, 49.9, 12.5),
    ("Greek Yogurt", 59, 10.2, 3.6, 0.4, 0.0), ("Egg", 155, 12.6, 1.1, 10.6, 0.0), ("Lentils", 116, 9.0, 20.1, 0.4, 7.9),
    ("Avocado", 160, 2.0, 8.5, 14.7, 6.7), ("Sweet Potato", 86, 1.6, 20.1, 0.1, 3.0), ("Spinach", 23, 2.9, 3.6, 0.4, 2.2),
    ("Tofu", 76, 8.0, 1.9, 4.8, 0.3), ("Quinoa", 120, 4.4, 21.3, 1.9, 2.8), ("Cheddar Cheese", 403, 24.9, 1.3, 33.1, 0.0),
    ("Whole Wheat Bread", 247, 13.0, 41.0, 3.4, 7.0), ("Blueberries", 57, 0.7, 14.5, 0.3, 2.4),
    ("Peanut Butter", 588, 25.1, 20.0, 50.4, 6.0), ("Chickpeas", 164, 8.9, 27.4, 2.6, 7.6), ("Tuna", 132, 28.2, 0.0, 1.3, 0.0),
    ("Orange", 47, 0.9, 11.8, 0.1, 2.4), ("Carrot", 41, 0.9, 9.6, 0.2, 2.8), ("Beef Steak", 271, 25.0, 0.0, 19.0, 0.0),
    ("Dark Chocolate", 546, 4.9, 61.0, 31.0, 7.0), ("Milk", 42, 3.4, 5.0, 1.0, 0.0), ("Pasta", 131, 5.0, 25.0, 1.1, 1.8),
    ("Cottage Cheese", 98, 11.1, 3.4, 4.3, 0.0), ("Kale", 49, 4.3, 8.8, 0.9, 3.6),
)
EXERCISES = (
    ("Push-Up", "Chest", "Bodyweight"), ("Bench Press", "Chest", "Barbell"), ("Squat", "Legs", "Barbell"),
    ("Lunge", "Legs", "Dumbbell"), ("Deadlift", "Back", "Barbell"), ("Pull-Up", "Back", "Bodyweight"),
    ("Plank", "Core", "Bodyweight"), ("Russian Twist", "Core", "Bodyweight"), ("Shoulder Press", "Shoulders", "Dumbbell"),
    ("Lateral Raise", "Shoulders", "Dumbbell"), ("Bicep Curl", "Arms", "Dumbbell"), ("Tricep Dip", "Arms", "Bodyweight"),
    ("Rowing Machine", "Back", "Machine"), ("Cycling", "Cardio", "Machine"), ("Running", "Cardio", "None"),
    ("Jump Rope", "Cardio", "Rope"), ("Swimming", "Cardio", "None"), ("Kettlebell Swing", "Legs", "Kettlebell"),
    ("Leg Press", "Legs", "Machine"), ("Mountain Climber", "Core", "Bodyweight"), ("Burpee", "Cardio", "Bodyweight"),
    ("Hip Thrust", "Legs", "Barbell"), ("Face Pull", "Shoulders", "Cable"), ("Cable Fly", "Chest", "Cable"),
)

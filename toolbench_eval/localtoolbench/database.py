"""The LocalToolBench database: a SQLite file built deterministically from a seed.

The database is not committed: it is built at first use into
`cache_dir()/localtoolbench-<version>-<seed>[-s<scale>].sqlite` (about 2 MB, well under a second) and
written atomically, so concurrent builders never see a half-written file. `world.json` in the world
directory records the seed, scale and a digest of the content; `open_database` checks the digest so a
world is never executed against a different database.

Every row comes from one `random.Random(seed)` stream consumed in a fixed order; `scale` shrinks the
generated tables for fast tests (fixed lists such as cities and countries are always complete).
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import sqlite3
import tempfile
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

from toolbench_eval.localtoolbench import WORLD_VERSION, vocab
from toolbench_eval.paths import cache_dir

TODAY = date(2024, 6, 1)  # the world's "now": forecasts, flights and job posts are dated around it

AIRPORT_CODES = (
    "LHR", "CDG", "BER", "MAD", "LIS", "FCO", "AMS", "VIE", "PRG", "WAW", "ARN", "OSL", "CPH", "HEL", "DUB",
    "ATH", "IST", "CAI", "NBO", "LOS", "CPT", "RAK", "DXB", "BOM", "DEL", "BKK", "SIN", "CGK", "HAN", "ICN",
    "HND", "KIX", "PEK", "PVG", "SYD", "MEL", "AKL", "YYZ", "YVR", "JFK", "ORD", "SFO", "SEA", "MIA", "DEN",
    "MEX", "BOG", "LIM", "SCL", "EZE", "GRU", "GIG",
)

SCHEMA = """
CREATE TABLE cities (city_id INTEGER PRIMARY KEY, name TEXT UNIQUE, country TEXT, country_code TEXT,
    lat REAL, lon REAL, timezone TEXT, population INTEGER);
CREATE TABLE weather (city TEXT PRIMARY KEY, country TEXT, temp_c REAL, feels_like_c REAL, humidity INTEGER,
    wind_kph REAL, condition TEXT, uv_index INTEGER, aqi INTEGER, pm25 REAL, pm10 REAL,
    dominant_pollutant TEXT, air_category TEXT, sunrise TEXT, sunset TEXT, moon_phase TEXT, alert TEXT);
CREATE TABLE forecast (city TEXT, day INTEGER, date TEXT, high_c REAL, low_c REAL, condition TEXT,
    precip_pct INTEGER, PRIMARY KEY (city, day));
CREATE TABLE countries (code TEXT PRIMARY KEY, name TEXT UNIQUE, capital TEXT, continent TEXT,
    population INTEGER, area_km2 INTEGER, currency TEXT, language TEXT, calling_code TEXT);
CREATE TABLE people (person_id INTEGER PRIMARY KEY, name TEXT UNIQUE, birth_year INTEGER, nationality TEXT,
    profession TEXT, known_for TEXT);
CREATE TABLE movies (movie_id INTEGER PRIMARY KEY, title TEXT UNIQUE, year INTEGER, genre TEXT,
    director_id INTEGER, rating REAL, runtime_min INTEGER, box_office_musd REAL, language TEXT, plot TEXT);
CREATE TABLE movie_cast (movie_id INTEGER, person_id INTEGER, character TEXT, billing INTEGER);
CREATE TABLE movie_reviews (review_id INTEGER PRIMARY KEY, movie_id INTEGER, author TEXT, score REAL,
    posted TEXT, text TEXT);
CREATE TABLE authors (author_id INTEGER PRIMARY KEY, name TEXT UNIQUE, country TEXT, birth_year INTEGER);
CREATE TABLE books (book_id INTEGER PRIMARY KEY, isbn TEXT UNIQUE, title TEXT UNIQUE, author_id INTEGER,
    year INTEGER, genre TEXT, pages INTEGER, publisher TEXT, rating REAL, summary TEXT);
CREATE TABLE teams (team_id INTEGER PRIMARY KEY, name TEXT UNIQUE, city TEXT, league TEXT, founded INTEGER,
    stadium TEXT, coach TEXT);
CREATE TABLE players (player_id INTEGER PRIMARY KEY, name TEXT UNIQUE, team_id INTEGER, position TEXT,
    age INTEGER, nationality TEXT, goals INTEGER, assists INTEGER, appearances INTEGER);
CREATE TABLE matches (match_id INTEGER PRIMARY KEY, league TEXT, date TEXT, home_team_id INTEGER,
    away_team_id INTEGER, home_score INTEGER, away_score INTEGER, attendance INTEGER);
CREATE TABLE standings (team_id INTEGER PRIMARY KEY, league TEXT, played INTEGER, wins INTEGER,
    draws INTEGER, losses INTEGER, goals_for INTEGER, goals_against INTEGER, points INTEGER);
CREATE TABLE stocks (symbol TEXT PRIMARY KEY, company TEXT UNIQUE, sector TEXT, exchange TEXT, price REAL,
    change_pct REAL, market_cap_busd REAL, pe_ratio REAL, dividend_yield REAL, ceo TEXT, founded INTEGER,
    employees INTEGER, headquarters TEXT, description TEXT);
CREATE TABLE stock_prices (symbol TEXT, date TEXT, open REAL, close REAL, high REAL, low REAL,
    volume INTEGER, PRIMARY KEY (symbol, date));
CREATE TABLE currencies (code TEXT PRIMARY KEY, name TEXT, usd_rate REAL);
CREATE TABLE crypto (symbol TEXT PRIMARY KEY, name TEXT UNIQUE, price_usd REAL, market_cap_busd REAL,
    change_24h_pct REAL, rank INTEGER);
CREATE TABLE recipes (recipe_id INTEGER PRIMARY KEY, name TEXT UNIQUE, cuisine TEXT, main_ingredient TEXT,
    prep_min INTEGER, calories INTEGER, servings INTEGER, difficulty TEXT, instructions TEXT);
CREATE TABLE recipe_ingredients (recipe_id INTEGER, position INTEGER, ingredient TEXT, quantity TEXT);
CREATE TABLE restaurants (restaurant_id INTEGER PRIMARY KEY, name TEXT UNIQUE, city TEXT, cuisine TEXT,
    rating REAL, price_level TEXT, address TEXT, phone TEXT, opening_hours TEXT);
CREATE TABLE airports (iata TEXT PRIMARY KEY, name TEXT, city TEXT, country TEXT, terminals INTEGER);
CREATE TABLE flights (flight_no TEXT PRIMARY KEY, airline TEXT, origin TEXT, destination TEXT, date TEXT,
    departure TEXT, arrival TEXT, duration_min INTEGER, price_usd REAL, seats_left INTEGER, status TEXT,
    gate TEXT);
CREATE TABLE hotels (hotel_id INTEGER PRIMARY KEY, name TEXT UNIQUE, city TEXT, stars INTEGER,
    price_per_night REAL, rating REAL, amenities TEXT, address TEXT, description TEXT);
CREATE TABLE artists (artist_id INTEGER PRIMARY KEY, name TEXT UNIQUE, country TEXT, genre TEXT,
    formed INTEGER, monthly_listeners INTEGER);
CREATE TABLE albums (album_id INTEGER PRIMARY KEY, artist_id INTEGER, title TEXT UNIQUE, year INTEGER,
    label TEXT, track_count INTEGER);
CREATE TABLE tracks (track_id INTEGER PRIMARY KEY, album_id INTEGER, artist_id INTEGER, title TEXT,
    track_number INTEGER, duration_s INTEGER, plays INTEGER);
CREATE TABLE products (product_id INTEGER PRIMARY KEY, sku TEXT UNIQUE, name TEXT UNIQUE, brand TEXT,
    category TEXT, price REAL, rating REAL, stock INTEGER, description TEXT);
CREATE TABLE product_reviews (review_id INTEGER PRIMARY KEY, product_id INTEGER, author TEXT, stars INTEGER,
    title TEXT, text TEXT);
CREATE TABLE companies (company_id INTEGER PRIMARY KEY, name TEXT UNIQUE, industry TEXT, city TEXT,
    employees INTEGER, founded INTEGER, rating REAL);
CREATE TABLE jobs (job_id INTEGER PRIMARY KEY, title TEXT, company_id INTEGER, company TEXT, city TEXT,
    level TEXT, salary_min INTEGER, salary_max INTEGER, remote TEXT, posted TEXT);
CREATE TABLE foods (food_id INTEGER PRIMARY KEY, name TEXT UNIQUE, calories INTEGER, protein_g REAL,
    carbs_g REAL, fat_g REAL, fiber_g REAL);
CREATE TABLE exercises (exercise_id INTEGER PRIMARY KEY, name TEXT UNIQUE, muscle TEXT, equipment TEXT,
    difficulty TEXT, calories_per_hour INTEGER);

CREATE VIEW movie_details AS SELECT m.movie_id, m.title, m.year, m.genre, p.name AS director, m.rating,
    m.runtime_min, m.box_office_musd, m.language, m.plot, m.director_id FROM movies m
    JOIN people p ON p.person_id = m.director_id;
CREATE VIEW cast_credits AS SELECT c.movie_id, c.person_id, p.name, c.character, c.billing, m.title, m.year
    FROM movie_cast c JOIN people p ON p.person_id = c.person_id JOIN movies m ON m.movie_id = c.movie_id;
CREATE VIEW book_details AS SELECT b.book_id, b.isbn, b.title, a.name AS author, b.year, b.genre, b.pages,
    b.publisher, b.rating, b.summary, b.author_id FROM books b JOIN authors a ON a.author_id = b.author_id;
CREATE VIEW player_details AS SELECT pl.player_id, pl.name, t.name AS team, pl.team_id, pl.position, pl.age,
    pl.nationality, pl.goals, pl.assists, pl.appearances, t.league FROM players pl
    JOIN teams t ON t.team_id = pl.team_id;
CREATE VIEW match_results AS SELECT mt.match_id, mt.league, mt.date, h.name AS home_team, a.name AS away_team,
    mt.home_score, mt.away_score, mt.attendance, mt.home_team_id, mt.away_team_id FROM matches mt
    JOIN teams h ON h.team_id = mt.home_team_id JOIN teams a ON a.team_id = mt.away_team_id;
CREATE VIEW team_matches AS SELECT match_id, league, date, home_team, away_team, home_score, away_score,
    home_team_id AS team_id FROM match_results UNION ALL SELECT match_id, league, date, home_team, away_team,
    home_score, away_score, away_team_id AS team_id FROM match_results;
CREATE VIEW league_table AS SELECT s.team_id, t.name AS team, s.league, s.played, s.wins, s.draws, s.losses,
    s.goals_for, s.goals_against, s.points FROM standings s JOIN teams t ON t.team_id = s.team_id;
CREATE VIEW track_details AS SELECT tr.track_id, tr.title, tr.track_number, tr.duration_s, tr.plays,
    tr.album_id, al.title AS album, tr.artist_id, ar.name AS artist FROM tracks tr
    JOIN albums al ON al.album_id = tr.album_id JOIN artists ar ON ar.artist_id = tr.artist_id;
"""


def _scaled(count: int, scale: float) -> int:
    return max(4, round(count * scale))


class _NamePool:
    """Unique person names ("First Last") handed out once each, in a seeded order."""

    def __init__(self, rng: random.Random):
        self._names = [f"{first} {last}" for first in vocab.FIRST_NAMES for last in vocab.LAST_NAMES]
        rng.shuffle(self._names)

    def take(self) -> str:
        return self._names.pop()


def _unique_titles(rng: random.Random, count: int, pattern: str, nouns=vocab.TITLE_NOUNS) -> list[str]:
    combos = [pattern.format(adj=a, noun=n) for a in vocab.TITLE_ADJECTIVES for n in nouns]
    rng.shuffle(combos)
    return combos[:count]


def _sentences(rng: random.Random, pool: tuple[str, ...], count: int) -> str:
    return " ".join(rng.sample(pool, count))


def _populate(conn: sqlite3.Connection, seed: int, scale: float) -> None:
    rng = random.Random(seed)
    names = _NamePool(rng)
    insert = conn.executemany

    # --- places and weather ---------------------------------------------------------------
    cities = []
    for index, (name, country, code, lat, lon, tz) in enumerate(vocab.CITIES, 1):
        cities.append((index, name, country, code, lat, lon, tz, rng.randint(300, 20000) * 1000))
    insert("INSERT INTO cities VALUES (?,?,?,?,?,?,?,?)", cities)
    for _, name, country, _, lat, *_ in cities:
        base = 30 - abs(lat) * 0.35 + rng.uniform(-4, 4)
        temp = round(base, 1)
        aqi = rng.randint(12, 180)
        category = "Good" if aqi <= 50 else "Moderate" if aqi <= 100 else "Unhealthy for sensitive groups" \
            if aqi <= 150 else "Unhealthy"
        sunrise = f"0{rng.randint(4, 7)}:{rng.randint(0, 59):02d}"
        sunset = f"{rng.randint(17, 21)}:{rng.randint(0, 59):02d}"
        alert = rng.choice(["None", "None", "Heat advisory", "Wind warning", "Flood watch"])
        conn.execute(
            "INSERT INTO weather VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (name, country, temp, round(temp + rng.uniform(-3, 2), 1), rng.randint(25, 95),
             round(rng.uniform(2, 45), 1), rng.choice(vocab.WEATHER_CONDITIONS), rng.randint(1, 11), aqi,
             round(aqi * 0.42 + rng.uniform(0, 5), 1), round(aqi * 0.7 + rng.uniform(0, 9), 1),
             rng.choice(vocab.POLLUTANTS), category, sunrise, sunset, rng.choice(vocab.MOON_PHASES), alert),
        )
        for day in range(1, 8):
            high = round(base + rng.uniform(-3, 5), 1)
            conn.execute(
                "INSERT INTO forecast VALUES (?,?,?,?,?,?,?)",
                (name, day, (TODAY + timedelta(days=day)).isoformat(), high, round(high - rng.uniform(4, 11), 1),
                 rng.choice(vocab.WEATHER_CONDITIONS), rng.randint(0, 95)),
            )
    for name, code, capital, continent, currency, language, calling in vocab.COUNTRIES:
        conn.execute(
            "INSERT INTO countries VALUES (?,?,?,?,?,?,?,?,?)",
            (code, name, capital, continent, rng.randint(2000, 1400000) * 1000, rng.randint(700, 9800000),
             currency, language, calling),
        )

    # --- movies ---------------------------------------------------------------------------
    n_directors, n_actors, n_movies = _scaled(40, scale), _scaled(120, scale), _scaled(240, scale)
    people = []
    for person_id in range(1, n_directors + n_actors + 1):
        profession = "Director" if person_id <= n_directors else "Actor"
        people.append((person_id, names.take(), rng.randint(1940, 2000), rng.choice(vocab.COUNTRIES)[0],
                       profession, None))
    titles = _unique_titles(rng, n_movies, "The {adj} {noun}")
    for movie_id, title in enumerate(titles, 1):
        director = rng.randint(1, n_directors)
        genre = rng.choice(vocab.MOVIE_GENRES)
        hero, rival = rng.sample(vocab.FIRST_NAMES, 2)
        plot = (f"{hero}, a {rng.choice(['retired', 'young', 'stubborn', 'gifted', 'reluctant'])} "
                f"{rng.choice(['detective', 'pilot', 'teacher', 'chef', 'scientist', 'musician'])}, "
                f"is drawn into {rng.choice(['a conspiracy', 'an unlikely friendship', 'a race against time', 'a family secret'])} "
                f"when {rival} returns to {rng.choice(vocab.CITIES)[0]}. "
                + _sentences(rng, (
                    "Old loyalties are tested as the stakes keep rising.",
                    "The film balances quiet character moments with sudden bursts of tension.",
                    "Nothing is quite what it seems, and every answer raises a new question.",
                    "A sweeping score and striking cinematography carry the story forward.",
                    "Critics praised the lead performance and the bold final act.",
                    "It is told across three decades in interlocking chapters.",
                ), 3))
        conn.execute(
            "INSERT INTO movies VALUES (?,?,?,?,?,?,?,?,?,?)",
            (movie_id, title, rng.randint(1975, 2024), genre, director, round(rng.uniform(4.5, 9.4), 1),
             rng.randint(82, 175), round(rng.uniform(0.4, 950), 1), rng.choice(vocab.LANGUAGES), plot),
        )
        actors = rng.sample(range(n_directors + 1, n_directors + n_actors + 1), 4)
        for billing, person_id in enumerate(actors, 1):
            conn.execute("INSERT INTO movie_cast VALUES (?,?,?,?)",
                         (movie_id, person_id, f"{rng.choice(vocab.FIRST_NAMES)} {rng.choice(vocab.LAST_NAMES)}",
                          billing))
    insert("INSERT INTO people VALUES (?,?,?,?,?,?)", people)
    review_id = 0
    review_lines = (
        "The pacing drags a little in the middle but the last half hour is superb.",
        "A gorgeous film with a script that trusts its audience.",
        "The ensemble cast is excellent and the dialogue feels lived in.",
        "I expected more from the director after the trailer.",
        "One of the most memorable endings I have seen in years.",
        "Visually stunning, emotionally a bit cold.",
        "Worth seeing on the biggest screen you can find.",
        "The soundtrack alone is worth the ticket.",
    )
    for movie_id in range(1, n_movies + 1):
        for _ in range(5):
            review_id += 1
            conn.execute(
                "INSERT INTO movie_reviews VALUES (?,?,?,?,?,?)",
                (review_id, movie_id, f"{rng.choice(vocab.FIRST_NAMES)}{rng.randint(10, 99)}",
                 round(rng.uniform(1, 10), 1), (TODAY - timedelta(days=rng.randint(1, 900))).isoformat(),
                 _sentences(rng, review_lines, 3)),
            )

    # --- books ----------------------------------------------------------------------------
    n_authors, n_books = _scaled(100, scale), _scaled(300, scale)
    for author_id in range(1, n_authors + 1):
        conn.execute("INSERT INTO authors VALUES (?,?,?,?)",
                     (author_id, names.take(), rng.choice(vocab.COUNTRIES)[0], rng.randint(1930, 1995)))
    book_titles = _unique_titles(rng, n_books, "{noun} of {adj} Days")
    for book_id, title in enumerate(book_titles, 1):
        isbn = "978" + "".join(str(rng.randint(0, 9)) for _ in range(10))
        genre = rng.choice(vocab.BOOK_GENRES)
        summary = (f"A {genre.lower()} {rng.choice(['novel', 'book', 'collection', 'account'])} set in "
                   f"{rng.choice(vocab.CITIES)[0]}, following {rng.choice(vocab.FIRST_NAMES)} through "
                   f"{rng.choice(['a year of upheaval', 'a lifetime of letters', 'a long winter', 'a vanished empire'])}.")
        conn.execute(
            "INSERT INTO books VALUES (?,?,?,?,?,?,?,?,?,?)",
            (book_id, isbn, title, rng.randint(1, n_authors), rng.randint(1950, 2024), genre,
             rng.randint(120, 780), rng.choice(vocab.PUBLISHERS), round(rng.uniform(2.8, 4.9), 2), summary),
        )

    # --- sports ---------------------------------------------------------------------------
    team_cities = rng.sample([c[1] for c in cities], 40)
    teams, team_id = [], 0
    for league_index, league in enumerate(vocab.LEAGUES):
        for slot in range(10):
            team_id += 1
            city = team_cities[league_index * 10 + slot]
            teams.append((team_id, f"{city} {rng.choice(vocab.TEAM_MASCOTS)}", city, league,
                          rng.randint(1880, 1995), f"{rng.choice(vocab.TITLE_ADJECTIVES)} Park Stadium",
                          names.take()))
    insert("INSERT INTO teams VALUES (?,?,?,?,?,?,?)", teams)
    player_id = 0
    players_per_team = max(3, round(11 * min(scale, 1.0)))
    for team in teams:
        for slot in range(players_per_team):
            player_id += 1
            position = vocab.POSITIONS[min(slot, 3)] if slot < 4 else rng.choice(vocab.POSITIONS[1:])
            goals = rng.randint(0, 4) if position in ("Goalkeeper", "Defender") else rng.randint(0, 31)
            conn.execute("INSERT INTO players VALUES (?,?,?,?,?,?,?,?,?)",
                         (player_id, names.take(), team[0], position, rng.randint(18, 37),
                          rng.choice(vocab.COUNTRIES)[0], goals, rng.randint(0, 18), rng.randint(5, 38)))
    match_id = 0
    table = {team[0]: [0, 0, 0, 0, 0, 0] for team in teams}  # played, w, d, l, gf, ga
    for league in vocab.LEAGUES:
        league_teams = [t[0] for t in teams if t[3] == league]
        fixtures = [(h, a) for h in league_teams for a in league_teams if h != a]
        rng.shuffle(fixtures)
        for index, (home, away) in enumerate(fixtures):
            match_id += 1
            hs, aws = rng.choice([0, 1, 1, 2, 2, 3, 4]), rng.choice([0, 0, 1, 1, 2, 3])
            day = (TODAY - timedelta(days=270 - index * 3)).isoformat()
            conn.execute("INSERT INTO matches VALUES (?,?,?,?,?,?,?,?)",
                         (match_id, league, day, home, away, hs, aws, rng.randint(8000, 75000)))
            for team, gf, ga in ((home, hs, aws), (away, aws, hs)):
                row = table[team]
                row[0] += 1
                row[1 if gf > ga else 2 if gf == ga else 3] += 1
                row[4] += gf
                row[5] += ga
    for team in teams:
        played, wins, draws, losses, gf, ga = table[team[0]]
        conn.execute("INSERT INTO standings VALUES (?,?,?,?,?,?,?,?,?)",
                     (team[0], team[3], played, wins, draws, losses, gf, ga, wins * 3 + draws))

    # --- finance --------------------------------------------------------------------------
    n_stocks = _scaled(120, scale)
    companies = [f"{root} {suffix}" for root in vocab.COMPANY_ROOTS for suffix in vocab.COMPANY_SUFFIXES]
    rng.shuffle(companies)
    used_symbols: set[str] = set()
    for company in companies[:n_stocks]:
        root, suffix = company.split(" ", 1)
        symbol = (root[:3] + suffix[0]).upper()
        while symbol in used_symbols:
            symbol = (root[:2] + suffix[:2]).upper() if len(used_symbols) % 2 else symbol[:3] + rng.choice("XYZQ")
        used_symbols.add(symbol)
        price = round(rng.uniform(8, 640), 2)
        sector = rng.choice(vocab.SECTORS)
        hq = rng.choice(vocab.CITIES)[0]
        description = (f"{company} is a {sector.lower()} company headquartered in {hq}. "
                       + _sentences(rng, (
                           "It serves customers in more than forty countries.",
                           "The company reported record revenue last fiscal year.",
                           "Its research division holds several hundred patents.",
                           "It went public after a decade of private growth.",
                           "Analysts highlight its recurring subscription income.",
                       ), 2))
        conn.execute(
            "INSERT INTO stocks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (symbol, company, sector, rng.choice(["NYSE", "NASDAQ", "LSE", "TSE"]), price,
             round(rng.uniform(-6, 6), 2), round(rng.uniform(0.5, 900), 1), round(rng.uniform(6, 60), 1),
             round(rng.uniform(0, 5.5), 2), names.take(), rng.randint(1950, 2015), rng.randint(200, 180000) // 10 * 10,
             hq, description),
        )
        close = price
        for back in range(10, 0, -1):  # ten trading days ending today
            open_ = round(close * rng.uniform(0.97, 1.03), 2)
            new_close = round(open_ * rng.uniform(0.96, 1.04), 2)
            conn.execute("INSERT INTO stock_prices VALUES (?,?,?,?,?,?,?)",
                         (symbol, (TODAY - timedelta(days=back)).isoformat(), open_, new_close,
                          round(max(open_, new_close) * 1.01, 2), round(min(open_, new_close) * 0.99, 2),
                          rng.randint(100, 90000) * 100))
            close = new_close
    for code, name, anchor in vocab.CURRENCIES:
        rate = 1.0 if code == "USD" else round(anchor * rng.uniform(0.97, 1.03), 4)
        conn.execute("INSERT INTO currencies VALUES (?,?,?)", (code, name, rate))
    coin_names = ("Bitcoin", "Ethereum", "Solana", "Cardano", "Polkadot", "Ripple", "Litecoin", "Dogecoin",
                  "Avalanche", "Chainlink", "Stellar", "Monero", "Tezos", "Algorand", "Cosmos")
    coin_symbols = ("BTC", "ETH", "SOL", "ADA", "DOT", "XRP", "LTC", "DOGE", "AVAX", "LINK", "XLM", "XMR",
                    "XTZ", "ALGO", "ATOM")
    prices = sorted((rng.uniform(0.05, 70000) for _ in coin_names), reverse=True)
    for rank, (name, symbol, price) in enumerate(zip(coin_names, coin_symbols, prices), 1):
        conn.execute("INSERT INTO crypto VALUES (?,?,?,?,?,?)",
                     (symbol, name, round(price, 4 if price < 1 else 2), round(1200 / rank * rng.uniform(0.6, 1.0), 1),
                      round(rng.uniform(-9, 9), 2), rank))

    # --- food -----------------------------------------------------------------------------
    n_recipes = _scaled(200, scale)
    dishes = [f"{cuisine} {ingredient.title()} {style}" for cuisine in vocab.CUISINES
              for ingredient in vocab.INGREDIENTS for style in vocab.DISH_STYLES]
    rng.shuffle(dishes)
    for recipe_id, dish in enumerate(dishes[:n_recipes], 1):
        cuisine, main = dish.split(" ")[0], dish.split(" ")[1].lower()
        extras = rng.sample([i for i in vocab.INGREDIENTS if i != main], 4) + ["olive oil", "garlic"]
        steps = [f"Step {n}: {text}" for n, text in enumerate((
            f"Prepare the {main} and cut it into even pieces.",
            f"Heat the olive oil and soften the garlic with {extras[0]}.",
            f"Add the {main} and cook for {rng.randint(5, 15)} minutes, stirring often.",
            f"Stir in {extras[1]} and {extras[2]}, season and simmer for {rng.randint(10, 30)} minutes.",
            f"Finish with {extras[3]}, taste, adjust the seasoning and serve warm.",
        ), 1)]
        conn.execute("INSERT INTO recipes VALUES (?,?,?,?,?,?,?,?,?)",
                     (recipe_id, dish, cuisine, main, rng.randint(10, 120), rng.randint(180, 950),
                      rng.randint(1, 8), rng.choice(["Easy", "Medium", "Hard"]), " ".join(steps)))
        for position, ingredient in enumerate([main, *extras], 1):
            conn.execute("INSERT INTO recipe_ingredients VALUES (?,?,?,?)",
                         (recipe_id, position, ingredient, f"{rng.randint(1, 500)} g"))
    restaurant_names = [f"{word} {kind}" for word in vocab.RESTAURANT_WORDS for kind in vocab.RESTAURANT_TYPES]
    restaurant_id = 0
    for city in cities:
        rng.shuffle(restaurant_names)
        for name in restaurant_names[: max(2, round(4 * min(scale, 1.0)))]:
            restaurant_id += 1
            conn.execute(
                "INSERT INTO restaurants VALUES (?,?,?,?,?,?,?,?,?)",
                (restaurant_id, f"{name} {city[1]}", city[1], rng.choice(vocab.CUISINES),
                 round(rng.uniform(3.0, 4.9), 1), rng.choice(["$", "$$", "$$$", "$$$$"]),
                 f"{rng.randint(1, 250)} {rng.choice(vocab.TITLE_NOUNS)} Street, {city[1]}",
                 f"+{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                 f"{rng.randint(7, 12)}:00-{rng.randint(21, 23)}:30"))

    # --- travel ---------------------------------------------------------------------------
    for city, iata in zip(cities, AIRPORT_CODES):
        conn.execute("INSERT INTO airports VALUES (?,?,?,?,?)",
                     (iata, f"{city[1]} {rng.choice(['International', 'Central', 'Metropolitan'])} Airport",
                      city[1], city[2], rng.randint(1, 5)))
    routes = [(a, b) for a in AIRPORT_CODES for b in AIRPORT_CODES if a != b]
    rng.shuffle(routes)
    flight_numbers: set[str] = set()
    for origin, destination in routes[: _scaled(300, scale)]:
        for _ in range(2):
            airline, prefix = rng.choice(vocab.AIRLINES)
            number = f"{prefix}{rng.randint(100, 9999)}"
            while number in flight_numbers:
                number = f"{prefix}{rng.randint(100, 9999)}"
            flight_numbers.add(number)
            depart = rng.randint(0, 23 * 60)
            duration = rng.randint(55, 900)
            arrive = (depart + duration) % (24 * 60)
            conn.execute(
                "INSERT INTO flights VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (number, airline, origin, destination, (TODAY + timedelta(days=rng.randint(1, 7))).isoformat(),
                 f"{depart // 60:02d}:{depart % 60:02d}", f"{arrive // 60:02d}:{arrive % 60:02d}", duration,
                 round(rng.uniform(60, 1800), 2), rng.randint(0, 180),
                 rng.choice(["Scheduled", "Scheduled", "On time", "Delayed", "Boarding"]),
                 f"{rng.choice('ABCDE')}{rng.randint(1, 40)}"))
    hotel_names = [f"{word} {kind}" for word in vocab.HOTEL_WORDS for kind in vocab.HOTEL_TYPES]
    hotel_id = 0
    for city in cities:
        rng.shuffle(hotel_names)
        for name in hotel_names[: max(2, round(4 * min(scale, 1.0)))]:
            hotel_id += 1
            amenities = ", ".join(sorted(rng.sample(vocab.AMENITIES, 5)))
            conn.execute(
                "INSERT INTO hotels VALUES (?,?,?,?,?,?,?,?,?)",
                (hotel_id, f"{name} {city[1]}", city[1], rng.randint(2, 5), round(rng.uniform(45, 620), 2),
                 round(rng.uniform(6.0, 9.8), 1), amenities,
                 f"{rng.randint(1, 300)} {rng.choice(vocab.TITLE_NOUNS)} Avenue, {city[1]}",
                 (f"A {rng.choice(['modern', 'historic', 'family-run', 'design'])} hotel "
                  f"{rng.choice(['steps from the old town', 'near the main station', 'overlooking the water', 'in a quiet residential area'])}.")))

    # --- music ----------------------------------------------------------------------------
    n_artists = _scaled(120, scale)
    bands = [f"The {w} {n}" for w in vocab.BAND_WORDS for n in vocab.BAND_NOUNS]
    rng.shuffle(bands)
    album_titles = _unique_titles(rng, n_artists * 3, "{adj} {noun} Sessions")
    track_titles = [f"{a} {n}" for a in vocab.TITLE_ADJECTIVES for n in vocab.TITLE_NOUNS]
    album_id = track_id = 0
    for artist_id in range(1, n_artists + 1):
        name = bands.pop() if artist_id % 2 and bands else names.take()
        conn.execute("INSERT INTO artists VALUES (?,?,?,?,?,?)",
                     (artist_id, name, rng.choice(vocab.COUNTRIES)[0], rng.choice(vocab.MUSIC_GENRES),
                      rng.randint(1965, 2020), rng.randint(2000, 40000000)))
        for _ in range(3):
            album_id += 1
            count = rng.randint(7, 10)
            conn.execute("INSERT INTO albums VALUES (?,?,?,?,?,?)",
                         (album_id, artist_id, album_titles[album_id - 1], rng.randint(1970, 2024),
                          rng.choice(vocab.RECORD_LABELS), count))
            for number, title in enumerate(rng.sample(track_titles, count), 1):
                track_id += 1
                conn.execute("INSERT INTO tracks VALUES (?,?,?,?,?,?,?)",
                             (track_id, album_id, artist_id, title, number, rng.randint(120, 420),
                              rng.randint(1000, 90000000)))

    # --- e-commerce -----------------------------------------------------------------------
    product_id = review_id = 0
    for category, items in vocab.PRODUCT_CATEGORIES.items():
        for item in items:
            for brand in rng.sample(vocab.BRANDS, max(2, round(5 * min(scale, 1.0)))):
                product_id += 1
                model = rng.choice(["Pro", "Lite", "Max", "Go", "Air", "Plus", "One", "X"])
                description = (f"The {brand} {item} {model} "
                               + _sentences(rng, (
                                   "is designed for everyday use at home and on the go.",
                                   "comes with a two-year warranty.",
                                   "is made from recycled materials.",
                                   "was a best seller last season.",
                                   "ships in plastic-free packaging.",
                               ), 2))
                conn.execute(
                    "INSERT INTO products VALUES (?,?,?,?,?,?,?,?,?)",
                    (product_id, f"{brand[:3].upper()}-{product_id:04d}", f"{brand} {item} {model}", brand,
                     category, round(rng.uniform(9, 899), 2), round(rng.uniform(2.5, 5.0), 1),
                     rng.randint(0, 500), description))
                for _ in range(3):
                    review_id += 1
                    conn.execute(
                        "INSERT INTO product_reviews VALUES (?,?,?,?,?,?)",
                        (review_id, product_id, f"{rng.choice(vocab.FIRST_NAMES)} {rng.choice(vocab.LAST_NAMES)[0]}.",
                         rng.randint(1, 5), rng.choice(vocab.REVIEW_OPENERS),
                         _sentences(rng, vocab.REVIEW_DETAILS, 3)))

    # --- jobs -----------------------------------------------------------------------------
    n_companies = _scaled(80, scale)
    for company_id, name in enumerate(companies[n_stocks:n_stocks + n_companies], 1):
        conn.execute("INSERT INTO companies VALUES (?,?,?,?,?,?,?)",
                     (company_id, name, rng.choice(vocab.INDUSTRIES), rng.choice(vocab.CITIES)[0],
                      rng.randint(20, 50000), rng.randint(1950, 2020), round(rng.uniform(2.5, 4.8), 1)))
    for job_id in range(1, _scaled(500, scale) + 1):
        company_id = rng.randint(1, n_companies)
        company = companies[n_stocks + company_id - 1]
        low = rng.randint(30, 140) * 1000
        conn.execute("INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?)",
                     (job_id, rng.choice(vocab.JOB_TITLES), company_id, company, rng.choice(vocab.CITIES)[0],
                      rng.choice(vocab.JOB_LEVELS), low, low + rng.randint(5, 60) * 1000,
                      rng.choice(["Yes", "No", "Hybrid"]), (TODAY - timedelta(days=rng.randint(0, 45))).isoformat()))

    # --- health ---------------------------------------------------------------------------
    for food_id, (name, calories, protein, carbs, fat, fiber) in enumerate(vocab.FOODS, 1):
        conn.execute("INSERT INTO foods VALUES (?,?,?,?,?,?,?)", (food_id, name, calories, protein, carbs, fat, fiber))
    for exercise_id, (name, muscle, equipment) in enumerate(vocab.EXERCISES, 1):
        conn.execute("INSERT INTO exercises VALUES (?,?,?,?,?,?)",
                     (exercise_id, name, muscle, equipment, rng.choice(["Beginner", "Intermediate", "Advanced"]),
                      rng.randint(180, 900)))


def build_database(path: str | Path, seed: int, scale: float = 1.0) -> Path:
    """Build the database at `path` atomically (a temp file renamed into place) and return the path.

    >>> import tempfile, os
    >>> p = build_database(os.path.join(tempfile.mkdtemp(), "w.sqlite"), seed=1, scale=0.05)
    >>> p.exists()
    True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(handle)
    os.unlink(tmp_name)
    try:
        with closing(sqlite3.connect(tmp_name)) as conn:
            conn.executescript(SCHEMA)
            _populate(conn, seed, scale)
            conn.commit()
            conn.execute("VACUUM")
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def database_path(seed: int, scale: float = 1.0) -> Path:
    """Where the cached database for (version, seed, scale) lives."""
    suffix = "" if scale == 1.0 else f"-s{scale:g}"
    return cache_dir() / f"localtoolbench-{WORLD_VERSION}-{seed}{suffix}.sqlite"


def content_digest(conn: sqlite3.Connection) -> str:
    """SHA-256 over the SQL dump: equal digests mean equal schema and rows, whatever the SQLite version."""
    digest = hashlib.sha256()
    for line in conn.iterdump():
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def connect(path: str | Path) -> sqlite3.Connection:
    """Open a database read-only: API functions can never change the world."""
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn


def ensure_database(seed: int, scale: float = 1.0) -> Path:
    """The cached database for `seed`, building it first if it is missing."""
    path = database_path(seed, scale)
    if not path.exists():
        build_database(path, seed, scale)
    return path


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres (used by the distance APIs)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))

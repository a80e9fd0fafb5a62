"""The LocalToolBench catalog as data: archetypes (requests over the database) and the tools and
categories that expose them. See `catalog.py` for what each field means."""

from __future__ import annotations

import random
import sqlite3
from typing import Any

from toolbench_eval.localtoolbench.catalog import (
    Archetype,
    Ask,
    Binding,
    Catalog,
    CategoryDef,
    Child,
    Param,
    ToolDef,
)
from toolbench_eval.localtoolbench.database import haversine_km
from toolbench_eval.localtoolbench.execution import ApiInputError


def S(name: str, description: str, default: Any = "", column: str | None = None, **kw) -> Param:
    return Param(name, "STRING", description, default, column or name, **kw)


def N(name: str, description: str, default: Any = "", column: str | None = None, **kw) -> Param:
    return Param(name, "NUMBER", description, default, column or name, **kw)


def E(name: str, description: str, options: tuple[str, ...], column: str | None = None, **kw) -> Param:
    return Param(name, "ENUM", description, options[0], column or name, options=options, **kw)


def C(name: str, type_: str, description: str, default: Any = "", **kw) -> Param:
    """A parameter of a custom function (no column)."""
    return Param(name, type_, description, default, None, **kw)


# --- custom functions ------------------------------------------------------------------------

def _city_row(conn: sqlite3.Connection, name: str) -> sqlite3.Row:
    row = conn.execute("SELECT name, lat, lon FROM cities WHERE name = ? COLLATE NOCASE", (name,)).fetchone()
    if row is None:
        raise ApiInputError(f"Unknown city '{name}'. Use a city name such as 'Lisbon' or 'Tokyo'.")
    return row


def distance(conn: sqlite3.Connection, args: dict) -> dict:
    a, b = _city_row(conn, args["from_city"]), _city_row(conn, args["to_city"])
    km = round(haversine_km(a["lat"], a["lon"], b["lat"], b["lon"]))
    return {"from": a["name"], "to": b["name"], "distance_km": km, "distance_miles": round(km * 0.621371)}


def sample_distance(conn: sqlite3.Connection, rng: random.Random) -> dict:
    names = [r[0] for r in conn.execute("SELECT name FROM cities ORDER BY city_id")]
    first, second = rng.sample(names, 2)
    return {"from_city": first, "to_city": second}


def _rate(conn: sqlite3.Connection, code: str, name: str) -> float:
    row = conn.execute("SELECT usd_rate FROM currencies WHERE code = ? COLLATE NOCASE", (code,)).fetchone()
    if row is None:
        raise ApiInputError(f"Invalid value for '{name}': unsupported currency code '{code}'")
    return row[0]


def convert(conn: sqlite3.Connection, args: dict) -> dict:
    source, target = args["from_currency"].upper(), args["to_currency"].upper()
    rate = _rate(conn, target, "to_currency") / _rate(conn, source, "from_currency")
    return {"from": source, "to": target, "amount": args["amount"], "rate": round(rate, 4),
            "result": round(args["amount"] * rate, 2), "date": "2024-06-01"}


def sample_convert(conn: sqlite3.Connection, rng: random.Random) -> dict:
    codes = [r[0] for r in conn.execute("SELECT code FROM currencies ORDER BY code")]
    first, second = rng.sample(codes, 2)
    return {"from_currency": first, "to_currency": second, "amount": rng.choice([50, 120, 250, 300, 1000, 1500])}


def rate(conn: sqlite3.Connection, args: dict) -> dict:
    base, target = args["base"].upper(), args["target"].upper()
    value = _rate(conn, target, "target") / _rate(conn, base, "base")
    return {"base": base, "target": target, "rate": round(value, 4), "inverse": round(1 / value, 4),
            "date": "2024-06-01"}


def sample_rate(conn: sqlite3.Connection, rng: random.Random) -> dict:
    codes = [r[0] for r in conn.execute("SELECT code FROM currencies ORDER BY code")]
    first, second = rng.sample(codes, 2)
    return {"base": first, "target": second}


def salary(conn: sqlite3.Connection, args: dict) -> dict:
    query = "SELECT COUNT(*), AVG(salary_min), AVG(salary_max) FROM jobs WHERE title LIKE ?"
    bindings: list[Any] = [f"%{args['job_title']}%"]
    if "city" in args:
        query += " AND city = ? COLLATE NOCASE"
        bindings.append(args["city"])
    count, low, high = conn.execute(query, bindings).fetchone()
    if not count:
        return {"message": f"No salary data for job_title='{args['job_title']}'"}
    return {"job_title": args["job_title"], "sample_size": count, "average_salary_min": round(low),
            "average_salary_max": round(high), "currency": "USD"}


def sample_salary(conn: sqlite3.Connection, rng: random.Random) -> dict:
    titles = [r[0] for r in conn.execute("SELECT DISTINCT title FROM jobs ORDER BY title")]
    return {"job_title": rng.choice(titles)}


def _exercise(conn: sqlite3.Connection, name: str) -> sqlite3.Row:
    row = conn.execute("SELECT name, calories_per_hour FROM exercises WHERE name = ? COLLATE NOCASE",
                       (name,)).fetchone()
    if row is None:
        raise ApiInputError(f"Unknown exercise '{name}'")
    return row


def calories_burned(conn: sqlite3.Connection, args: dict) -> dict:
    row = _exercise(conn, args["activity"])
    if args["minutes"] <= 0 or args["minutes"] > 600:
        raise ApiInputError("Invalid value for 'minutes': must be between 1 and 600")
    return {"activity": row["name"], "minutes": args["minutes"],
            "calories_burned": round(row["calories_per_hour"] * args["minutes"] / 60)}


def sample_calories_burned(conn: sqlite3.Connection, rng: random.Random) -> dict:
    names = [r[0] for r in conn.execute("SELECT name FROM exercises ORDER BY exercise_id")]
    return {"activity": rng.choice(names), "minutes": rng.choice([20, 30, 45, 50, 75, 90])}


def bmi(conn: sqlite3.Connection, args: dict) -> dict:
    weight, height = args["weight_kg"], args["height_cm"]
    if not 20 <= weight <= 300 or not 100 <= height <= 250:
        raise ApiInputError("Invalid input: weight_kg must be 20-300 and height_cm 100-250")
    value = round(weight / (height / 100) ** 2, 1)
    category = "Underweight" if value < 18.5 else "Normal weight" if value < 25 else "Overweight" \
        if value < 30 else "Obese"
    return {"bmi": value, "category": category, "weight_kg": weight, "height_cm": height}


def sample_bmi(conn: sqlite3.Connection, rng: random.Random) -> dict:
    return {"weight_kg": rng.randint(48, 120), "height_cm": rng.randint(150, 198)}


def food_calories(conn: sqlite3.Connection, args: dict) -> dict:
    row = conn.execute("SELECT name, calories, protein_g FROM foods WHERE name = ? COLLATE NOCASE",
                       (args["food"],)).fetchone()
    if row is None:
        return {"message": f"No food found for food='{args['food']}'"}
    grams = args["grams"]
    if grams <= 0 or grams > 5000:
        raise ApiInputError("Invalid value for 'grams': must be between 1 and 5000")
    return {"food": row["name"], "grams": grams, "calories": round(row["calories"] * grams / 100),
            "protein_g": round(row["protein_g"] * grams / 100, 1)}


def sample_food_calories(conn: sqlite3.Connection, rng: random.Random) -> dict:
    names = [r[0] for r in conn.execute("SELECT name FROM foods ORDER BY food_id")]
    return {"food": rng.choice(names), "grams": rng.choice([150, 200, 250, 350, 400])}


def _product_keyword(row: dict) -> str:
    """"Voltix Air Fryer Pro" -> "Air Fryer": what a shopper would type."""
    words = row["name"].split(" ")
    return " ".join(words[len(row["brand"].split(" ")):-1])


CITY = "City name"

ARCHETYPES: tuple[Archetype, ...] = (
    # --- Weather ------------------------------------------------------------------------------
    Archetype(
        "weather.current", "get", "weather", "Current weather for a city: temperature, humidity, wind and sky.",
        (S("city", CITY, "London", entity="city"),),
        ("city", "country", "temp_c", "feels_like_c", "humidity", "wind_kph", "condition"),
        (Ask("the current temperature and sky conditions in {city}", ("temp_c", "condition")),
         Ask("how warm it feels outside in {city} right now", ("feels_like_c",))),
        not_found="No weather station found"),
    Archetype(
        "weather.forecast", "list", "forecast", "Daily forecast (high, low, sky, chance of rain) for up to 7 days.",
        (S("city", CITY, "Paris", entity="city"),),
        ("date", "high_c", "low_c", "condition", "precip_pct"),
        (Ask("the forecast daily highs for the next {n} days in {city}", ("high_c",), (2, 3)),
         Ask("tomorrow's forecast high and low for {city}", ("high_c", "low_c"))),
        order=("day",), limit_param="days", default_limit=3, max_limit=7, not_found="No forecast available"),
    Archetype(
        "weather.air", "get", "weather", "Air quality index, PM2.5 level and dominant pollutant for a city.",
        (S("city", CITY, "Delhi", entity="city"),),
        ("city", "aqi", "air_category", "pm25", "pm10", "dominant_pollutant"),
        (Ask("the air quality index and PM2.5 level in {city}", ("aqi", "pm25")),),
        not_found="No air quality data"),
    Archetype(
        "weather.astronomy", "get", "weather", "Sunrise, sunset and moon phase for a city today.",
        (S("city", CITY, "Tokyo", entity="city"),),
        ("city", "sunrise", "sunset", "moon_phase"),
        (Ask("today's sunrise and sunset times in {city}", ("sunrise", "sunset")),),
        not_found="No astronomy data"),
    Archetype(
        "weather.alerts", "get", "weather", "Active weather alerts and warnings for a city.",
        (S("city", CITY, "Miami", entity="city"),),
        ("city", "alert", "condition", "wind_kph"), (), not_found="No alerts data"),
    # --- Location -----------------------------------------------------------------------------
    Archetype(
        "geo.country", "get", "countries", "Country profile: capital, population, currency, language.",
        (S("country", "Country name", "Japan", column="name", entity="country"),),
        ("name", "code", "capital", "continent", "population", "area_km2", "currency", "language"),
        (Ask("the capital and population of {country}", ("capital", "population")),
         Ask("the currency code and main language of {country}", ("currency", "language"))),
        not_found="Country not found"),
    Archetype(
        "geo.country_code", "get", "countries", "Look up a country by its two-letter ISO code.",
        (S("code", "ISO 3166 alpha-2 code", "PT"),),
        ("code", "name", "capital", "continent"),
        (Ask("which country has the ISO code {code} and what its capital is", ("name", "capital")),),
        not_found="No country with that code"),
    Archetype(
        "geo.continent", "list", "countries", "Countries of a continent, most populous first.",
        (E("continent", "Continent name", ("Europe", "Asia", "Africa", "North America", "South America",
                                           "Oceania")),),
        ("name", "capital", "population"),
        (Ask("the {n} most populous countries in {continent}", ("name",), (2, 3)),),
        order=("population DESC", "code"), limit_param="limit", default_limit=10, not_found="No countries"),
    Archetype(
        "geo.calling_code", "get", "countries", "International dialing code of a country.",
        (S("country", "Country name", "Brazil", column="name", entity="country"),),
        ("name", "calling_code"),
        (Ask("the international dialing code for {country}", ("calling_code",)),),
        not_found="Country not found"),
    Archetype(
        "geo.city", "get", "cities", "City facts: country, population, coordinates and time zone.",
        (S("city", CITY, "Sydney", column="name", entity="city"),),
        ("name", "country", "population", "lat", "lon", "timezone"),
        (Ask("the population and time zone of {city}", ("population", "timezone")),),
        not_found="City not found"),
    Archetype(
        "geo.distance", "custom", "cities", "Great-circle distance between two cities in km and miles.",
        (C("from_city", "STRING", "Start city", "Paris"), C("to_city", "STRING", "End city", "Berlin")),
        asks=(Ask("the straight-line distance in kilometres between {from_city} and {to_city}", ("distance_km",)),),
        function=distance, sample=sample_distance),
    # --- Movies -------------------------------------------------------------------------------
    Archetype(
        "movies.search", "list", "movie_details", "Search movies by title; returns ids, year, director, rating.",
        (S("title", "Full or partial movie title", "The Silent Harbor", match="like"),),
        ("movie_id", "title", "year", "director", "rating"),
        (Ask("the release year and director of {title}", ("year", "director")),
         Ask("the audience rating of {title}", ("rating",))),
        order=("title",), limit_param="limit", default_limit=5, not_found="No movies found"),
    Archetype(
        "movies.details", "get", "movie_details", "Full movie record with plot and main cast, by movie id.",
        (N("movie_id", "Movie id from the search endpoint", 12, resolve=("movies.search", "movie_id")),),
        ("movie_id", "title", "year", "genre", "director", "rating", "runtime_min", "box_office_musd",
         "language", "plot"),
        (Ask("the runtime in minutes and box office (million USD) of {movie_id}", ("runtime_min", "box_office_musd")),
         Ask("the lead actor of {movie_id}", ("cast.0.name",))),
        children=(Child("cast", "cast_credits", "movie_id", "movie_id", ("name", "character"), "billing"),),
        not_found="Movie not found"),
    Archetype(
        "movies.reviews", "list", "movie_reviews", "User reviews of a movie, newest first.",
        (N("movie_id", "Movie id from the search endpoint", 12, resolve=("movies.search", "movie_id")),),
        ("author", "score", "posted", "text"),
        (Ask("the score given in the most recent user review of {movie_id}", ("score",)),),
        order=("posted DESC", "review_id"), limit_param="limit", default_limit=10, paginate=True,
        not_found="No reviews"),
    Archetype(
        "movies.person", "list", "people", "Search actors and directors by name.",
        (S("name", "Full or partial person name", "Ava Moreno", match="like"),),
        ("person_id", "name", "birth_year", "nationality", "profession"),
        (Ask("the birth year and nationality of {name}", ("birth_year", "nationality")),),
        order=("name",), limit_param="limit", default_limit=5, not_found="No people found"),
    Archetype(
        "movies.directed", "list", "movie_details", "Movies directed by a person, newest first.",
        (N("director_id", "Person id of the director", 3, resolve=("movies.person", "person_id")),),
        ("movie_id", "title", "year", "rating"),
        (Ask("the {n} most recent films directed by {director_id}", ("title",), (1, 2, 3)),),
        order=("year DESC", "movie_id"), limit_param="limit", default_limit=10, not_found="No movies found"),
    Archetype(
        "movies.credits", "list", "cast_credits", "Acting credits of a person, newest first.",
        (N("person_id", "Person id of the actor", 57, resolve=("movies.person", "person_id")),),
        ("title", "year", "character"),
        (Ask("the {n} most recent films starring {person_id}", ("title",), (1, 2)),),
        order=("year DESC", "movie_id"), limit_param="limit", default_limit=10, not_found="No credits found"),
    Archetype(
        "movies.top_genre", "list", "movie_details", "Top-rated movies of a genre.",
        (E("genre", "Movie genre", ("Drama", "Comedy", "Thriller", "Science Fiction", "Animation",
                                    "Documentary", "Horror", "Romance")),),
        ("movie_id", "title", "year", "rating"),
        (Ask("the {n} highest-rated {genre} films", ("title",), (2, 3)),),
        order=("rating DESC", "movie_id"), limit_param="limit", default_limit=10, not_found="No movies found"),
    Archetype(
        "movies.box_office", "list", "movie_details", "Highest-grossing movies of a release year.",
        (N("year", "Release year", 2019),),
        ("title", "box_office_musd", "director"),
        (Ask("the {n} top-grossing films released in {year}", ("title",), (1, 2)),),
        order=("box_office_musd DESC", "movie_id"), limit_param="limit", default_limit=10,
        not_found="No movies found"),
    # --- Education (books) --------------------------------------------------------------------
    Archetype(
        "books.search", "list", "book_details", "Search books by title.",
        (S("title", "Full or partial book title", "Harbor of Silent Days", match="like"),),
        ("book_id", "title", "author", "year", "rating"),
        (Ask("who wrote {title} and the year it was published", ("author", "year")),
         Ask("the average reader rating of {title}", ("rating",))),
        order=("title",), limit_param="limit", default_limit=5, not_found="No books found"),
    Archetype(
        "books.isbn", "get", "book_details", "Look up a book by its 13-digit ISBN.",
        (S("isbn", "ISBN-13 without dashes", "9781234567897"),),
        ("isbn", "title", "author", "year", "publisher"),
        (Ask("the title and author of the book with ISBN {isbn}", ("title", "author")),),
        not_found="No book with this ISBN"),
    Archetype(
        "books.details", "get", "book_details", "Full book record with summary, pages and publisher, by id.",
        (N("book_id", "Book id from the search endpoint", 7, resolve=("books.search", "book_id")),),
        ("book_id", "title", "author", "year", "genre", "pages", "publisher", "rating", "summary", "isbn"),
        (Ask("the page count and publisher of {book_id}", ("pages", "publisher")),
         Ask("the ISBN of {book_id}", ("isbn",))),
        not_found="Book not found"),
    Archetype(
        "books.author", "list", "authors", "Search authors by name.",
        (S("name", "Full or partial author name", "Liam Okafor", match="like"),),
        ("author_id", "name", "country", "birth_year"),
        (Ask("the home country and birth year of the author {name}", ("country", "birth_year")),),
        order=("name",), limit_param="limit", default_limit=5, not_found="No authors found"),
    Archetype(
        "books.by_author", "list", "book_details", "Books by an author, newest first.",
        (N("author_id", "Author id", 4, resolve=("books.author", "author_id")),),
        ("book_id", "title", "year", "rating"),
        (Ask("the {n} most recent books by {author_id}", ("title",), (1, 2, 3)),),
        order=("year DESC", "book_id"), limit_param="limit", default_limit=10, not_found="No books found"),
    Archetype(
        "books.top_genre", "list", "book_details", "Best-rated books in a genre.",
        (E("genre", "Book genre", ("Fiction", "Mystery", "Fantasy", "History", "Biography", "Science",
                                   "Poetry", "Self-Help")),),
        ("title", "author", "rating"),
        (Ask("the {n} best-rated {genre} books", ("title",), (2, 3)),),
        order=("rating DESC", "book_id"), limit_param="limit", default_limit=10, not_found="No books found"),
    # --- Sports -------------------------------------------------------------------------------
    Archetype(
        "sports.team", "list", "teams", "Search football teams by name.",
        (S("name", "Full or partial team name", "Lisbon Rovers", match="like"),),
        ("team_id", "name", "city", "league", "stadium", "coach", "founded"),
        (Ask("the home stadium and head coach of {name}", ("stadium", "coach")),
         Ask("the league {name} plays in and the year the club was founded", ("league", "founded"))),
        order=("name",), limit_param="limit", default_limit=5, not_found="No teams found"),
    Archetype(
        "sports.roster", "list", "player_details", "Squad of a team, top scorers first.",
        (N("team_id", "Team id", 5, resolve=("sports.team", "team_id")),),
        ("player_id", "name", "position", "goals", "assists"),
        (Ask("the {n} top scorers of {team_id} this season", ("name",), (1, 2, 3)),),
        order=("goals DESC", "player_id"), limit_param="limit", default_limit=20, not_found="No players found"),
    Archetype(
        "sports.player", "list", "player_details", "Search players by name; season statistics.",
        (S("name", "Full or partial player name", "Mateo Rossi", match="like"),),
        ("player_id", "name", "team", "position", "age", "goals", "assists", "appearances"),
        (Ask("which team {name} plays for and in which position", ("team", "position")),
         Ask("how many goals {name} has scored this season", ("goals",))),
        order=("name",), limit_param="limit", default_limit=5, not_found="No players found"),
    Archetype(
        "sports.standings", "list", "league_table", "League table: points, wins, draws, losses.",
        (E("league", "League name", ("Premier Division", "Coastal League", "Continental Cup League",
                                     "Northern Conference")),),
        ("team", "played", "wins", "draws", "losses", "points"),
        (Ask("the top {n} teams in the {league} table", ("team",), (2, 3)),),
        order=("points DESC", "goals_for - goals_against DESC", "team_id"), limit_param="limit",
        default_limit=10, not_found="No standings"),
    Archetype(
        "sports.matches", "list", "team_matches", "Results of a team's matches, most recent first.",
        (N("team_id", "Team id", 5, resolve=("sports.team", "team_id")),),
        ("date", "home_team", "away_team", "home_score", "away_score"),
        (Ask("the date and opponent of the most recent match played by {team_id}",
             ("date", "home_team", "away_team")),),
        order=("date DESC", "match_id"), limit_param="limit", default_limit=10, paginate=True,
        not_found="No matches found"),
    Archetype(
        "sports.top_scorers", "list", "player_details", "Leading goal scorers of a league.",
        (E("league", "League name", ("Premier Division", "Coastal League", "Continental Cup League",
                                     "Northern Conference")),),
        ("name", "team", "goals"),
        (Ask("the {n} leading goal scorers in the {league}", ("name",), (2, 3)),),
        order=("goals DESC", "player_id"), limit_param="limit", default_limit=10, not_found="No players found"),
    # --- Finance ------------------------------------------------------------------------------
    Archetype(
        "finance.symbol_search", "list", "stocks", "Find ticker symbols by company name.",
        (S("company", "Full or partial company name", "Norvex Systems", match="like"),),
        ("symbol", "company", "exchange"),
        (Ask("the ticker symbol and stock exchange of {company}", ("symbol", "exchange")),),
        order=("company",), limit_param="limit", default_limit=5, not_found="No symbols found"),
    Archetype(
        "finance.quote", "get", "stocks", "Latest price and daily change of a stock by ticker.",
        (S("symbol", "Ticker symbol", "NORS", resolve=("finance.symbol_search", "symbol"),
           resolve_optional=True),),
        ("symbol", "company", "price", "change_pct", "market_cap_busd"),
        (Ask("the latest share price of {symbol}", ("price",)),
         Ask("today's percentage change of {symbol} stock", ("change_pct",))),
        not_found="Unknown symbol"),
    Archetype(
        "finance.profile", "get", "stocks", "Company profile: sector, CEO, headquarters, employees, summary.",
        (S("symbol", "Ticker symbol", "NORS", resolve=("finance.symbol_search", "symbol"), resolve_optional=True),),
        ("symbol", "company", "sector", "exchange", "ceo", "headquarters", "employees", "founded", "description"),
        (Ask("the CEO and headquarters city of {symbol}", ("ceo", "headquarters")),
         Ask("the sector and number of employees of {symbol}", ("sector", "employees"))),
        not_found="Unknown symbol"),
    Archetype(
        "finance.history", "list", "stock_prices", "Daily open/close prices and volume, latest first.",
        (S("symbol", "Ticker symbol", "NORS", resolve=("finance.symbol_search", "symbol"), resolve_optional=True),),
        ("date", "open", "close", "high", "low", "volume"),
        (Ask("the closing prices of {symbol} over the last {n} trading days", ("close",), (2, 3)),),
        order=("date DESC",), limit_param="days", default_limit=5, max_limit=10, not_found="No price history"),
    Archetype(
        "finance.sector", "list", "stocks", "Stocks of a sector ranked by today's change.",
        (E("sector", "Market sector", ("Technology", "Healthcare", "Energy", "Financials", "Consumer",
                                       "Industrials", "Materials", "Utilities")),),
        ("symbol", "company", "price", "change_pct"),
        (Ask("the {n} best-performing {sector} stocks today", ("company",), (2, 3)),),
        order=("change_pct DESC", "symbol"), limit_param="limit", default_limit=10, not_found="No stocks"),
    Archetype(
        "finance.convert", "custom", "currencies", "Convert an amount between two currencies at today's rate.",
        (C("from_currency", "STRING", "ISO code of the source currency", "USD"),
         C("to_currency", "STRING", "ISO code of the target currency", "EUR"),
         C("amount", "NUMBER", "Amount to convert", 100)),
        asks=(Ask("how much {amount} {from_currency} is in {to_currency}", ("result",)),),
        function=convert, sample=sample_convert),
    Archetype(
        "finance.rate", "custom", "currencies", "Exchange rate between two currencies.",
        (C("base", "STRING", "Base currency ISO code", "EUR"), C("target", "STRING", "Target currency ISO code", "JPY")),
        asks=(Ask("the exchange rate from {base} to {target}", ("rate",)),),
        function=rate, sample=sample_rate),
    Archetype(
        "finance.currency", "get", "currencies", "Currency name and its rate per US dollar.",
        (S("code", "ISO currency code", "SEK"),),
        ("code", "name", "usd_rate"),
        (Ask("the full name of the currency {code} and how many units buy one US dollar", ("name", "usd_rate")),),
        not_found="Unknown currency"),
    Archetype(
        "finance.crypto", "get", "crypto", "Price, market cap and 24h change of a cryptocurrency.",
        (S("coin", "Coin name", "Bitcoin", column="name"),),
        ("symbol", "name", "price_usd", "market_cap_busd", "change_24h_pct", "rank"),
        (Ask("the current US dollar price of {coin}", ("price_usd",)),
         Ask("the market capitalisation in billion USD of {coin}", ("market_cap_busd",))),
        not_found="Unknown coin"),
    # --- Food ---------------------------------------------------------------------------------
    Archetype(
        "food.by_ingredient", "list", "recipes", "Recipes built around an ingredient, quickest first.",
        (S("ingredient", "Main ingredient", "salmon", column="main_ingredient"),),
        ("recipe_id", "name", "cuisine", "prep_min", "calories"),
        (Ask("the {n} quickest recipes that use {ingredient}", ("name",), (1, 2, 3)),),
        order=("prep_min", "recipe_id"), limit_param="limit", default_limit=10, not_found="No recipes found"),
    Archetype(
        "food.recipe_search", "list", "recipes", "Search recipes by name.",
        (S("name", "Full or partial recipe name", "Thai Tofu Curry", match="like"),),
        ("recipe_id", "name", "cuisine", "difficulty", "servings"),
        (Ask("the difficulty level and number of servings of the {name} recipe", ("difficulty", "servings")),),
        order=("name",), limit_param="limit", default_limit=5, not_found="No recipes found"),
    Archetype(
        "food.recipe", "get", "recipes", "Full recipe with ingredients and step-by-step instructions.",
        (N("recipe_id", "Recipe id", 11, resolve=("food.recipe_search", "recipe_id")),),
        ("recipe_id", "name", "cuisine", "prep_min", "calories", "servings", "difficulty", "instructions"),
        (Ask("the calories per serving and preparation time of the {recipe_id} recipe", ("calories", "prep_min")),),
        children=(Child("ingredients", "recipe_ingredients", "recipe_id", "recipe_id",
                        ("ingredient", "quantity"), "position"),),
        not_found="Recipe not found"),
    Archetype(
        "food.cuisine", "list", "recipes", "Recipes of a cuisine, lightest first.",
        (E("cuisine", "Cuisine", ("Italian", "Japanese", "Mexican", "Indian", "Thai", "French", "Greek",
                                  "Lebanese", "Korean", "Spanish")),),
        ("recipe_id", "name", "calories", "prep_min"),
        (Ask("the {n} lowest-calorie {cuisine} recipes", ("name",), (2, 3)),),
        order=("calories", "recipe_id"), limit_param="limit", default_limit=10, not_found="No recipes found"),
    Archetype(
        "food.restaurants", "list", "restaurants", "Restaurants in a city, best rated first.",
        (S("city", CITY, "Rome", entity="city"),),
        ("name", "cuisine", "rating", "price_level", "address"),
        (Ask("the {n} best-rated restaurants in {city}", ("name",), (1, 2, 3)),),
        order=("rating DESC", "restaurant_id"), limit_param="limit", default_limit=10, not_found="No restaurants"),
    Archetype(
        "food.restaurant", "list", "restaurants", "Restaurant contact details and opening hours by name.",
        (S("name", "Full or partial restaurant name", "Saffron Bistro Rome", match="like"),),
        ("name", "address", "phone", "opening_hours", "rating"),
        (Ask("the address and opening hours of {name}", ("address", "opening_hours")),
         Ask("the phone number of {name}", ("phone",))),
        order=("name",), limit_param="limit", default_limit=5, not_found="No restaurants found"),
    # --- Travel -------------------------------------------------------------------------------
    Archetype(
        "travel.airport", "list", "airports", "Airports serving a city, with IATA codes.",
        (S("city", CITY, "Madrid", entity="city"),),
        ("iata", "name", "city", "country", "terminals"),
        (Ask("the IATA code of the airport serving {city}", ("iata",)),),
        order=("iata",), limit_param="limit", default_limit=5, not_found="No airports found"),
    Archetype(
        "travel.flights", "list", "flights", "Flights between two airports, cheapest first.",
        (S("origin", "Origin IATA code", "LIS", resolve=("travel.airport", "iata"), resolve_optional=True),
         S("destination", "Destination IATA code", "JFK", resolve=("travel.airport", "iata"),
           resolve_optional=True)),
        ("flight_no", "airline", "date", "departure", "arrival", "price_usd", "seats_left"),
        (Ask("the cheapest flight from {origin} to {destination} and its price", ("flight_no", "price_usd")),),
        order=("price_usd", "flight_no"), limit_param="limit", default_limit=10, not_found="No flights found"),
    Archetype(
        "travel.flight_status", "get", "flights", "Live status, gate and times of a flight number.",
        (S("flight_no", "Flight number", "SW1234"),),
        ("flight_no", "airline", "origin", "destination", "date", "departure", "arrival", "status", "gate"),
        (Ask("the departure time and gate of flight {flight_no}", ("departure", "gate")),),
        not_found="Flight not found"),
    Archetype(
        "travel.hotels", "list", "hotels", "Hotels in a city, best rated first.",
        (S("city", CITY, "Vienna", entity="city"),),
        ("hotel_id", "name", "stars", "price_per_night", "rating"),
        (Ask("the {n} highest-rated hotels in {city}", ("name",), (1, 2, 3)),),
        order=("rating DESC", "hotel_id"), limit_param="limit", default_limit=10, not_found="No hotels found"),
    Archetype(
        "travel.cheap_hotels", "list", "hotels", "Hotels in a city, cheapest first.",
        (S("city", CITY, "Oslo", entity="city"),),
        ("hotel_id", "name", "stars", "price_per_night"),
        (Ask("the {n} cheapest hotels in {city} and their nightly price", ("name", "price_per_night"), (1, 2)),),
        order=("price_per_night", "hotel_id"), limit_param="limit", default_limit=10, not_found="No hotels found"),
    Archetype(
        "travel.hotel_search", "list", "hotels", "Search hotels by name.",
        (S("name", "Full or partial hotel name", "Grand Hotel Lisbon", match="like"),),
        ("hotel_id", "name", "city", "stars"),
        (Ask("the star rating of {name}", ("stars",)),),
        order=("name",), limit_param="limit", default_limit=5, not_found="No hotels found"),
    Archetype(
        "travel.hotel", "get", "hotels", "Hotel details: address, amenities, price and description.",
        (N("hotel_id", "Hotel id", 3, resolve=("travel.hotel_search", "hotel_id")),),
        ("hotel_id", "name", "city", "stars", "price_per_night", "rating", "address", "amenities", "description"),
        (Ask("the street address and nightly price of {hotel_id}", ("address", "price_per_night")),),
        not_found="Hotel not found"),
    # --- Music --------------------------------------------------------------------------------
    Archetype(
        "music.artist", "list", "artists", "Search artists by name: genre, country, listeners.",
        (S("name", "Full or partial artist name", "The Neon Tides", match="like"),),
        ("artist_id", "name", "genre", "country", "formed", "monthly_listeners"),
        (Ask("the genre and monthly listener count of {name}", ("genre", "monthly_listeners")),),
        order=("name",), limit_param="limit", default_limit=5, not_found="No artists found"),
    Archetype(
        "music.albums", "list", "albums", "Albums of an artist, newest first.",
        (N("artist_id", "Artist id", 8, resolve=("music.artist", "artist_id")),),
        ("album_id", "title", "year", "label", "track_count"),
        (Ask("the {n} latest albums by {artist_id}", ("title",), (1, 2)),),
        order=("year DESC", "album_id"), limit_param="limit", default_limit=10, not_found="No albums found"),
    Archetype(
        "music.album_search", "list", "albums", "Search albums by title.",
        (S("title", "Full or partial album title", "Golden Harbor Sessions", match="like"),),
        ("album_id", "title", "year", "label", "track_count"),
        (Ask("the release year and record label of the album {title}", ("year", "label")),),
        order=("title",), limit_param="limit", default_limit=5, not_found="No albums found"),
    Archetype(
        "music.tracks", "list", "track_details", "Track list of an album in order, with durations and plays.",
        (N("album_id", "Album id", 21, resolve=("music.album_search", "album_id")),),
        ("track_number", "title", "duration_s", "plays", "album", "artist"),
        (Ask("the title of the opening track on {album_id}", ("title",)),),
        order=("track_number",), limit_param="limit", default_limit=20, not_found="No tracks found"),
    Archetype(
        "music.top_tracks", "list", "track_details", "Most played tracks of an artist.",
        (N("artist_id", "Artist id", 8, resolve=("music.artist", "artist_id")),),
        ("title", "album", "plays"),
        (Ask("the {n} most-played songs by {artist_id}", ("title",), (1, 2, 3)),),
        order=("plays DESC", "track_id"), limit_param="limit", default_limit=10, not_found="No tracks found"),
    Archetype(
        "music.genre_chart", "list", "artists", "Most streamed artists of a genre.",
        (E("genre", "Music genre", ("Rock", "Jazz", "Hip-Hop", "Electronic", "Folk", "Classical", "Pop",
                                    "Reggae")),),
        ("name", "country", "monthly_listeners"),
        (Ask("the {n} most-streamed {genre} artists", ("name",), (2, 3)),),
        order=("monthly_listeners DESC", "artist_id"), limit_param="limit", default_limit=10,
        not_found="No artists found"),
    # --- eCommerce ----------------------------------------------------------------------------
    Archetype(
        "shop.search", "list", "products", "Search products by keyword, cheapest first.",
        (S("query", "Search keywords", "air fryer", column="name", match="like",
           value_from=_product_keyword),),
        ("product_id", "name", "brand", "price", "rating"),
        (Ask("the {n} cheapest {query} listings and their prices", ("name", "price"), (1, 2)),),
        order=("price", "product_id"), limit_param="limit", default_limit=10, paginate=True,
        not_found="No products found"),
    Archetype(
        "shop.lookup", "list", "products", "Find a product id by exact or partial product name.",
        (S("name", "Product name", "Voltix Air Fryer Pro", match="like"),),
        ("product_id", "name", "sku"),
        (Ask("the SKU of the {name}", ("sku",)),),
        order=("name",), limit_param="limit", default_limit=5, not_found="No products found"),
    Archetype(
        "shop.product", "get", "products", "Product details: price, rating, stock and description.",
        (N("product_id", "Product id", 14, resolve=("shop.lookup", "product_id")),),
        ("product_id", "sku", "name", "brand", "category", "price", "rating", "stock", "description"),
        (Ask("the price and units in stock of the {product_id}", ("price", "stock")),),
        not_found="Product not found"),
    Archetype(
        "shop.reviews", "list", "product_reviews", "Customer reviews of a product.",
        (N("product_id", "Product id", 14, resolve=("shop.lookup", "product_id")),),
        ("author", "stars", "title", "text"),
        (Ask("who wrote the first customer review of the {product_id} and its headline", ("author", "title")),),
        order=("review_id",), limit_param="limit", default_limit=10, paginate=True, not_found="No reviews"),
    Archetype(
        "shop.sku", "get", "products", "Price and availability by SKU.",
        (S("sku", "Stock keeping unit", "VOL-0001"),),
        ("sku", "name", "price", "stock"),
        (Ask("the product name and price for SKU {sku}", ("name", "price")),),
        not_found="Unknown SKU"),
    Archetype(
        "shop.bestsellers", "list", "products", "Top-rated products of a department.",
        (E("department", "Department", ("Electronics", "Home & Kitchen", "Sports & Outdoors", "Books & Media",
                                        "Beauty"), column="category"),),
        ("name", "price", "rating"),
        (Ask("the {n} top-rated products in the {department} department", ("name",), (2, 3)),),
        order=("rating DESC", "product_id"), limit_param="limit", default_limit=10, not_found="No products"),
    # --- Jobs ---------------------------------------------------------------------------------
    Archetype(
        "jobs.search", "list", "jobs", "Job openings by title keyword and city, best paid first.",
        (S("keyword", "Job title keyword", "Data Analyst", column="title", match="like"),
         S("city", CITY, "Berlin", entity="city")),
        ("job_id", "title", "company", "level", "salary_min", "salary_max", "remote", "posted"),
        (Ask("the best-paid {keyword} opening in {city}, with its company and maximum salary",
             ("company", "salary_max")),),
        order=("salary_max DESC", "job_id"), limit_param="limit", default_limit=10, paginate=True,
        not_found="No jobs found"),
    Archetype(
        "jobs.company", "list", "companies", "Search companies: industry, city, headcount, rating.",
        (S("name", "Full or partial company name", "Altura Labs", match="like"),),
        ("company_id", "name", "industry", "city", "employees", "founded", "rating"),
        (Ask("the industry and headcount of {name}", ("industry", "employees")),
         Ask("where {name} is based and when it was founded", ("city", "founded"))),
        order=("name",), limit_param="limit", default_limit=5, not_found="No companies found"),
    Archetype(
        "jobs.company_jobs", "list", "jobs", "Open positions at a company, newest first.",
        (N("company_id", "Company id", 3, resolve=("jobs.company", "company_id")),),
        ("job_id", "title", "city", "level", "posted"),
        (Ask("the {n} newest job openings at {company_id}", ("title",), (1, 2)),),
        order=("posted DESC", "job_id"), limit_param="limit", default_limit=10, not_found="No openings"),
    Archetype(
        "jobs.salary", "custom", "jobs", "Average advertised salary range for a job title.",
        (C("job_title", "STRING", "Job title", "Accountant"),
         C("city", "STRING", "Optional city filter", "", required=False)),
        asks=(Ask("the average advertised salary range for {job_title} roles",
                  ("average_salary_min", "average_salary_max")),),
        function=salary, sample=sample_salary),
    Archetype(
        "jobs.remote", "list", "jobs", "Remote-friendly openings for a title keyword, best paid first.",
        (S("keyword", "Job title keyword", "Software Engineer", column="title", match="like"),
         E("remote", "Remote policy", ("Yes", "Hybrid", "No"))),
        ("title", "company", "city", "salary_max", "remote"),
        (Ask("the best-paid {keyword} job with remote policy '{remote}' and its company", ("company", "salary_max")),),
        order=("salary_max DESC", "job_id"), limit_param="limit", default_limit=10, not_found="No jobs found"),
    # --- Health and fitness -------------------------------------------------------------------
    Archetype(
        "health.nutrition", "get", "foods", "Nutrition facts per 100 g of a food.",
        (S("food", "Food name", "Avocado", column="name"),),
        ("name", "calories", "protein_g", "carbs_g", "fat_g", "fiber_g"),
        (Ask("the calories and protein per 100 g of {food}", ("calories", "protein_g")),
         Ask("the carbohydrate and fat content per 100 g of {food}", ("carbs_g", "fat_g"))),
        not_found="Food not found"),
    Archetype(
        "health.food_calories", "custom", "foods", "Calories and protein in a given weight of a food.",
        (C("food", "STRING", "Food name", "Oats"), C("grams", "NUMBER", "Portion weight in grams", 100)),
        asks=(Ask("how many calories are in {grams} g of {food}", ("calories",)),),
        function=food_calories, sample=sample_food_calories),
    Archetype(
        "health.exercises", "list", "exercises", "Exercises for a muscle group, most intense first.",
        (E("muscle", "Muscle group", ("Chest", "Legs", "Back", "Core", "Shoulders", "Arms", "Cardio")),),
        ("name", "equipment", "difficulty", "calories_per_hour"),
        (Ask("the {n} most calorie-intensive exercises for {muscle}", ("name",), (1, 2)),),
        order=("calories_per_hour DESC", "exercise_id"), limit_param="limit", default_limit=10,
        not_found="No exercises"),
    Archetype(
        "health.exercise", "get", "exercises", "Exercise details: muscle group, equipment, calories per hour.",
        (S("exercise", "Exercise name", "Squat", column="name"),),
        ("name", "muscle", "equipment", "difficulty", "calories_per_hour"),
        (Ask("the equipment needed for {exercise} and the calories it burns per hour",
             ("equipment", "calories_per_hour")),),
        not_found="Exercise not found"),
    Archetype(
        "health.burned", "custom", "exercises", "Calories burned by an activity over a number of minutes.",
        (C("activity", "STRING", "Exercise name", "Running"), C("minutes", "NUMBER", "Duration in minutes", 30)),
        asks=(Ask("how many calories {minutes} minutes of {activity} burns", ("calories_burned",)),),
        function=calories_burned, sample=sample_calories_burned),
    Archetype(
        "health.bmi", "custom", "foods", "Body mass index and weight category.",
        (C("weight_kg", "NUMBER", "Body weight in kg", 70), C("height_cm", "NUMBER", "Height in cm", 175)),
        asks=(Ask("the BMI and weight category of someone who weighs {weight_kg} kg and is {height_cm} cm tall",
                  ("bmi", "category")),),
        function=bmi, sample=sample_bmi),
)


def B(archetype: str, name: str, **kw) -> Binding:
    return Binding(archetype, name, **kw)


CATEGORIES: tuple[CategoryDef, ...] = (
    CategoryDef("Weather", ("I'm planning a day outdoors.", "I'm packing for a trip.", "Quick weather check."), (
        ToolDef("WeatherNow", "Real-time weather, daily forecasts and air quality for major world cities.", (
            B("weather.current", "Current Weather"), B("weather.forecast", "Daily Forecast"),
            B("weather.air", "Air Quality", unreliable="too_many_requests"), B("weather.astronomy", "Sun and Moon"))),
        ToolDef("ClimaCast", "Forecast API with realtime conditions and severe-weather alerts.", (
            B("weather.current", "realtime", rename={"city": "location"}),
            B("weather.forecast", "forecast daily", rename={"city": "location"}),
            B("weather.alerts", "alerts", rename={"city": "location"}, dead=True),
            B("weather.astronomy", "astronomy", rename={"city": "location"}))),
        ToolDef("AirWatch", "Air pollution monitoring: AQI, particulate matter and pollutants by city.", (
            B("weather.air", "Get City AQI", rename={"city": "q"}),
            B("weather.current", "Get Conditions", rename={"city": "q"}),
            B("weather.astronomy", "Get Daylight", rename={"city": "q"}))),
        ToolDef("MeteoHub", "Meteorological data hub: observations, 7-day outlooks and daylight times.", (
            B("weather.forecast", "Get 7 Day Outlook"), B("weather.current", "Get Observation", unreliable="timeout"),
            B("weather.astronomy", "Get Sun Times"), B("weather.air", "Get Pollution"))),
        ToolDef("SkyCheck", "Lightweight weather lookups for travellers.", (
            B("weather.current", "Check Weather", rename={"city": "city_name"}),
            B("weather.forecast", "Check Forecast", rename={"city": "city_name"}),
            B("weather.air", "Check Air", rename={"city": "city_name"}),
            B("weather.alerts", "Check Alerts", rename={"city": "city_name"}, dead=True))),
    )),
    CategoryDef("Location", ("I'm working on a geography quiz.", "I'm researching a few places.", ""), (
        ToolDef("GeoAtlas", "Country and city reference data from around the world.", (
            B("geo.country", "Country Details"), B("geo.continent", "Countries by Continent"),
            B("geo.calling_code", "Dialing Code"), B("geo.country_code", "Country by ISO Code"))),
        ToolDef("CountryFacts", "Facts about countries: capitals, currencies, languages and more.", (
            B("geo.country", "getCountry", rename={"country": "name"}), B("geo.country_code", "getCountryByCode"),
            B("geo.continent", "listCountries"))),
        ToolDef("CityInfo", "City facts and travel distances.", (
            B("geo.city", "City Lookup", rename={"city": "name"}), B("geo.distance", "Distance Between Cities"),
            B("geo.calling_code", "Phone Prefix", rename={"country": "country_name"}))),
        ToolDef("DistanceCalc", "Compute great-circle distances between cities.", (
            B("geo.distance", "Calculate Distance", rename={"from_city": "start", "to_city": "end"}),
            B("geo.city", "Find City"), B("geo.country", "Find Country"))),
        ToolDef("WorldData", "World geography API: countries, cities and dialing codes.", (
            B("geo.country", "country info"), B("geo.city", "city info"), B("geo.continent", "continent countries"),
            B("geo.distance", "city distance", unreliable="server_error"))),
    )),
    CategoryDef("Movies", ("I'm planning a movie night.", "My film club is meeting this week.", ""), (
        ToolDef("FilmDB", "Movie database: titles, people, plots and cast.", (
            B("movies.search", "Search Movies"), B("movies.details", "Movie Details"),
            B("movies.person", "Search People"), B("movies.directed", "Movies by Director"))),
        ToolDef("CineSearch", "Find films by title, genre and box office.", (
            B("movies.search", "Title Search", rename={"title": "q"}), B("movies.top_genre", "Top Rated by Genre"),
            B("movies.box_office", "Box Office by Year"), B("movies.details", "Film Info"))),
        ToolDef("StarProfiles", "Profiles and filmographies of actors and directors.", (
            B("movies.person", "Find Person"), B("movies.credits", "Actor Credits"),
            B("movies.directed", "Director Filmography", unreliable="too_many_requests"))),
        ToolDef("MovieReviewsHub", "Audience reviews and ratings for movies.", (
            B("movies.search", "Find Movie"), B("movies.reviews", "Get Reviews"), B("movies.top_genre", "Best in Genre"))),
        ToolDef("BoxOfficeTracker", "Box office rankings and film details.", (
            B("movies.box_office", "Yearly Box Office"), B("movies.search", "Lookup Film", rename={"title": "film"}),
            B("movies.details", "Film Details"), B("movies.reviews", "Film Reviews"))),
    )),
    CategoryDef("Education", ("I'm putting together a reading list.", "I'm writing a book report.", ""), (
        ToolDef("OpenShelf", "Open book catalogue: titles, authors and summaries.", (
            B("books.search", "Search Books"), B("books.details", "Book Details"),
            B("books.author", "Search Authors"), B("books.by_author", "Books by Author"))),
        ToolDef("BookFinder", "Find books by ISBN, title or genre.", (
            B("books.isbn", "ISBN Lookup"), B("books.search", "Title Lookup", rename={"title": "q"}),
            B("books.top_genre", "Genre Bestsellers"))),
        ToolDef("LitMeta", "Literary metadata about authors and their works.", (
            B("books.author", "author search", rename={"name": "author_name"}),
            B("books.by_author", "author works"), B("books.search", "work search"),
            B("books.details", "work details", unreliable="server_error"))),
        ToolDef("ReadersHub", "Reader ratings and curated book lists.", (
            B("books.top_genre", "Top Books"), B("books.search", "Find Book"), B("books.isbn", "Book by ISBN"),
            B("books.details", "Book Info"))),
    )),
    CategoryDef("Sports", ("I'm a big football fan.", "I'm preparing for my fantasy league.", ""), (
        ToolDef("SportScore", "Football teams, fixtures and results.", (
            B("sports.team", "Search Teams"), B("sports.matches", "Team Results"), B("sports.standings", "League Table"))),
        ToolDef("FootStats", "Player and squad statistics for football leagues.", (
            B("sports.player", "Player Stats"), B("sports.team", "Team Search", rename={"name": "team_name"}),
            B("sports.roster", "Squad"), B("sports.top_scorers", "Top Scorers", unreliable="too_many_requests"))),
        ToolDef("LeagueTable", "League standings and scoring charts.", (
            B("sports.standings", "Standings"), B("sports.top_scorers", "Golden Boot Race"),
            B("sports.team", "Club Info"))),
        ToolDef("PlayerMetrics", "Advanced player metrics and team rosters.", (
            B("sports.player", "player lookup", rename={"name": "player"}), B("sports.team", "team lookup"),
            B("sports.roster", "team roster"), B("sports.matches", "team fixtures"))),
    )),
    CategoryDef("Finance", ("I'm reviewing my portfolio.", "I'm comparing a few investments.", ""), (
        ToolDef("StockPulse", "Stock quotes, price history and sector movers.", (
            B("finance.symbol_search", "Symbol Search"), B("finance.quote", "Stock Quote"),
            B("finance.history", "Price History"), B("finance.sector", "Sector Movers"))),
        ToolDef("MarketQuote", "Real-time market quotes and company profiles.", (
            B("finance.quote", "quote", rename={"symbol": "ticker"}),
            B("finance.profile", "company profile", rename={"symbol": "ticker"}),
            B("finance.symbol_search", "ticker search", rename={"company": "keywords"}))),
        ToolDef("FXRates", "Foreign exchange rates and currency conversion.", (
            B("finance.convert", "Convert Currency", unreliable="timeout"), B("finance.rate", "Exchange Rate"),
            B("finance.currency", "Currency Info"))),
        ToolDef("CoinTrack", "Cryptocurrency prices and market data.", (
            B("finance.crypto", "Coin Price"), B("finance.rate", "Fiat Rate"), B("finance.convert", "Fiat Convert"))),
        ToolDef("FinProfile", "Company fundamentals and trading history.", (
            B("finance.profile", "Get Profile"), B("finance.symbol_search", "Find Ticker"),
            B("finance.history", "Get History"), B("finance.quote", "Get Quote"))),
    )),
    CategoryDef("Food", ("I'm cooking dinner tonight.", "I'm planning a dinner out.", ""), (
        ToolDef("RecipeBox", "Recipes by ingredient or cuisine, with full instructions.", (
            B("food.by_ingredient", "Recipes by Ingredient"), B("food.recipe_search", "Search Recipes"),
            B("food.recipe", "Recipe Details"), B("food.cuisine", "Recipes by Cuisine"))),
        ToolDef("CookSmart", "Smart recipe finder with nutrition estimates.", (
            B("food.cuisine", "cuisine recipes"), B("food.recipe_search", "find recipe", rename={"name": "q"}),
            B("food.recipe", "recipe info", unreliable="server_error"))),
        ToolDef("TastyFinder", "Restaurant discovery by city.", (
            B("food.restaurants", "Restaurants in City"), B("food.restaurant", "Restaurant Info"),
            B("food.by_ingredient", "Dish Ideas"))),
        ToolDef("DineOut", "Restaurant guide with ratings and contact details.", (
            B("food.restaurants", "Best Restaurants", rename={"city": "location"}),
            B("food.restaurant", "Restaurant Contact", rename={"name": "restaurant"}),
            B("food.cuisine", "Cuisine Guide"))),
    )),
    CategoryDef("Travel", ("I'm organising a trip.", "I'm travelling for work next week.", ""), (
        ToolDef("SkyFares", "Flight search with live fares.", (
            B("travel.airport", "Airport Search"), B("travel.flights", "Search Flights"),
            B("travel.flight_status", "Flight Status", unreliable="too_many_requests"))),
        ToolDef("FlightStatusLive", "Live flight status and airport information.", (
            B("travel.flight_status", "Track Flight", rename={"flight_no": "flight_number"}),
            B("travel.airport", "Find Airport", rename={"city": "city_name"}),
            B("travel.flights", "Route Flights"))),
        ToolDef("StayFinder", "Hotel search, prices and details.", (
            B("travel.hotels", "Hotels by City"), B("travel.hotel_search", "Hotel Search"),
            B("travel.hotel", "Hotel Details"), B("travel.cheap_hotels", "Budget Hotels"))),
        ToolDef("AirportDB", "Airports and routes database.", (
            B("travel.airport", "airports by city"), B("travel.flights", "route search"),
            B("travel.flight_status", "flight info"))),
        ToolDef("TripBooker", "Book flights and hotels in one place.", (
            B("travel.hotels", "Find Hotels", rename={"city": "destination_city"}),
            B("travel.flights", "Find Flights", rename={"origin": "from_airport", "destination": "to_airport"}),
            B("travel.airport", "Find Airports"), B("travel.cheap_hotels", "Cheapest Stays"))),
    )),
    CategoryDef("Music", ("I'm building a new playlist.", "I'm going to a concert soon.", ""), (
        ToolDef("TuneBase", "Music catalogue: artists, albums and tracks.", (
            B("music.artist", "Search Artist"), B("music.albums", "Artist Albums"),
            B("music.album_search", "Search Album"), B("music.tracks", "Album Tracks"))),
        ToolDef("SoundChart", "Streaming charts by genre and artist.", (
            B("music.genre_chart", "Genre Chart"), B("music.artist", "Artist Lookup", rename={"name": "artist"}),
            B("music.top_tracks", "Top Tracks", unreliable="timeout"))),
        ToolDef("AlbumArchive", "Discographies and album track lists.", (
            B("music.album_search", "album search", rename={"title": "album_title"}),
            B("music.tracks", "tracklist"), B("music.artist", "artist search"), B("music.albums", "discography"))),
        ToolDef("StreamStats", "Streaming statistics for artists and songs.", (
            B("music.artist", "Find Artist"), B("music.top_tracks", "Most Played"),
            B("music.genre_chart", "Trending Artists"))),
    )),
    CategoryDef("eCommerce", ("I'm shopping for a gift.", "I'm comparing products before buying.", ""), (
        ToolDef("ShopSearch", "Product search across online stores.", (
            B("shop.search", "Search Products"), B("shop.lookup", "Product Lookup"),
            B("shop.product", "Product Details"))),
        ToolDef("PriceWatch", "Prices and availability by SKU or keyword.", (
            B("shop.sku", "Price by SKU"), B("shop.search", "Price Search", rename={"query": "keywords"}),
            B("shop.lookup", "Find Product"), B("shop.product", "Product Info"))),
        ToolDef("ReviewHub", "Customer reviews for products.", (
            B("shop.lookup", "Find Item", rename={"name": "product_name"}),
            B("shop.reviews", "Item Reviews", unreliable="server_error"), B("shop.bestsellers", "Best Rated"))),
        ToolDef("DealFinder", "Best sellers and deals by department.", (
            B("shop.bestsellers", "Bestsellers"), B("shop.search", "Deal Search"), B("shop.sku", "SKU Check"))),
    )),
    CategoryDef("Jobs", ("I'm looking for a new job.", "I'm helping a friend with their career move.", ""), (
        ToolDef("JobBoard", "Job listings by title and city.", (
            B("jobs.search", "Search Jobs"), B("jobs.remote", "Remote Jobs"), B("jobs.company", "Company Search"),
            B("jobs.company_jobs", "Company Openings"))),
        ToolDef("CareerScope", "Employer research and salary data.", (
            B("jobs.company", "employer lookup", rename={"name": "employer"}),
            B("jobs.company_jobs", "employer jobs"), B("jobs.salary", "salary estimate", unreliable="too_many_requests"))),
        ToolDef("SalaryInsights", "Salary benchmarks from advertised openings.", (
            B("jobs.salary", "Average Salary"), B("jobs.search", "Openings", rename={"keyword": "title"}),
            B("jobs.remote", "Remote Openings", rename={"keyword": "title"}))),
        ToolDef("CompanyLens", "Company profiles and hiring activity.", (
            B("jobs.company", "Company Profile"), B("jobs.company_jobs", "Hiring Now"),
            B("jobs.salary", "Pay Range"))),
    )),
    CategoryDef("Health_and_Fitness", ("I'm trying to eat healthier.", "I'm starting a new training plan.", ""), (
        ToolDef("NutriFacts", "Nutrition facts for common foods.", (
            B("health.nutrition", "Nutrition Facts"), B("health.food_calories", "Portion Calories"),
            B("health.bmi", "BMI Calculator"))),
        ToolDef("FitCoach", "Exercise library and workout calculators.", (
            B("health.exercises", "Exercises by Muscle"), B("health.exercise", "Exercise Info"),
            B("health.burned", "Calories Burned", unreliable="timeout"))),
        ToolDef("CalorieCalc", "Calorie calculators for food and activity.", (
            B("health.burned", "activity calories"), B("health.food_calories", "food calories"),
            B("health.nutrition", "food facts", rename={"food": "item"}))),
        ToolDef("HealthMetrics", "Body metrics and fitness reference data.", (
            B("health.bmi", "Compute BMI"), B("health.nutrition", "Food Nutrition"),
            B("health.exercise", "Exercise Details", rename={"exercise": "name"}),
            B("health.exercises", "Muscle Workouts"))),
    )),
)

CATALOG = Catalog(CATEGORIES, ARCHETYPES)

# --- splits (what each test group holds out) ----------------------------------------------------

HELD_OUT_CATEGORIES: tuple[str, ...] = ("Jobs", "Health_and_Fitness")  # G1_category, G2_category
HELD_OUT_TOOLS: tuple[str, ...] = ("SkyCheck", "WorldData", "BoxOfficeTracker", "ReadersHub", "PlayerMetrics",
                                   "FinProfile", "DineOut", "TripBooker", "StreamStats", "DealFinder")  # G1_tool
# G3: a hand-defined cross-category collection, as ToolBench's RapidAPI "collections".
COLLECTIONS: dict[str, tuple[str, ...]] = {
    "Trip Planner": ("WeatherNow", "ClimaCast", "GeoAtlas", "CityInfo", "SkyFares", "StayFinder", "FXRates",
                     "TastyFinder"),
    "Weekend In": ("MeteoHub", "RecipeBox", "FilmDB", "TuneBase", "StockPulse", "ShopSearch", "SportScore"),
}

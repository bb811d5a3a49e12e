// Bazaar's storefront: plain JavaScript over the REST API (DESIGN §7).
// Sign-in: the page reads a token from the URL fragment (/#token=…), keeps it
// in the browser (so new tabs and deep links are signed in too) and removes
// it from the address bar; a new link signs in as its customer at once.
// Every view has an address in the fragment (#q=…&offset=…, #product=…,
// #basket, #order=…, #orders), so Back and Forward move between views, a
// reload stays on the view and a product or order link opens in a new tab.
"use strict";

const state = { token: null, customer: null, q: "", category: "", offset: 0, limit: 12, product: null, orderStream: null, ordersCursor: null, searches: 0, basketQueue: Promise.resolve(), unanswered: null, placing: false, basketLines: undefined, basketShown: undefined };
const TOKEN_KEY = "bazaar-token";
// A customer may cancel an order in one of these (DESIGN §5).
const CANCELLABLE = ["pending", "confirmed"];
const $ = (id) => document.getElementById(id);

function readToken() {
  const match = /(?:^|[#&])token=([^&]*)/.exec(location.hash);
  let link = "";
  if (match) {
    history.replaceState(null, "", location.pathname + location.search);
    // A broken or expired link (cut short when copied, say) must not sign
    // out the customer the page already knows.
    const token = decodeOr(match[1]);
    const claims = token && claimsOf(token);
    if (claims && !expired(claims)) localStorage.setItem(TOKEN_KEY, token);
    else link = claims ? "That sign-in link has expired: ask the shop for a new one." : "That sign-in link is broken: copy the whole link, up to its end.";
  }
  state.token = localStorage.getItem(TOKEN_KEY);
  let claims = state.token ? claimsOf(state.token) : null;
  let lapsed = false;
  if (claims && expired(claims)) {
    // The shop would refuse it: the page says so now, not at the first click.
    localStorage.removeItem(TOKEN_KEY);
    claims = null;
    lapsed = true;
  }
  if (!claims) state.token = null;
  state.customer = claims ? claims.sub : null;
  const who = state.customer ? `Signed in as ${state.customer}`
    : lapsed ? "Signed out (your sign-in expired): open the sign-in link again"
      : "Not signed in (open the sign-in link the shop gave you)";
  $("who").textContent = link ? `${link} ${who}` : who;
  // Another customer's page now: an earlier customer's unanswered order is
  // not theirs to ask about. Signed out, it is kept until someone signs in.
  if (state.unanswered && state.customer && state.unanswered.customer !== state.customer) setUnanswered(null);
}

// A URI component decoded, or null when it is not one (a stray `%`).
function decodeOr(text) {
  try { return decodeURIComponent(text); } catch (_) { return null; }
}

// The claims of a JWT as the page reads them (the edge checks the
// signature), or null when the token is not one.
function claimsOf(token) {
  try {
    // base64url of UTF-8 JSON: atob gives bytes, not characters.
    const bytes = Uint8Array.from(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims.sub === "string" ? claims : null;
  } catch (_) {
    return null;
  }
}

// Whether a token's `exp` (seconds) has passed, with the shop's own
// 5 s allowance for clocks that differ a little.
function expired(claims) {
  return typeof claims.exp === "number" && claims.exp * 1000 + 5000 <= Date.now();
}

// The edge refused the token (expired, or signed by another shop): forget
// it, so the page stops claiming the customer is signed in.
function signOut(reason) {
  localStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.customer = null;
  $("who").textContent = `Signed out (${reason}): open the sign-in link again`;
}

function money(m) {
  if (!m) return "–";
  return new Intl.NumberFormat(undefined, { style: "currency", currency: m.currency }).format(m.amount_minor / 100);
}

function notify(text, isError) {
  const n = $("notice");
  n.textContent = text;
  n.hidden = !text;
  n.classList.toggle("error", !!isError);
  n.setAttribute("role", isError ? "alert" : "status");
  // An error is given where the customer's eyes are not (the top of the
  // page, after a press at the bottom of a form): bring it into view.
  if (text && isError) n.scrollIntoView({ block: "nearest" });
}

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

// The API's names of the checkout form's fields, as the form labels them.
const FIELD_LABELS = {
  "shipping_address.name": "Full name",
  "shipping_address.line1": "Street and number",
  "shipping_address.city": "City",
  "shipping_address.postal_code": "Postal code",
  "shipping_address.country": "Country",
  "payment_method": "Test card",
  "q": "Search",
};

// `token`: whom the request is for, when the caller fixed it before a
// sign-in in another tab could change `state.token` (placing an order).
async function api(method, path, body, extraHeaders, token = state.token) {
  const headers = { Accept: "application/json", ...(extraHeaders || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (_) {
    throw new Error("the shop cannot be reached; check your connection and try again");
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!response.ok) {
    const label = (field) => FIELD_LABELS[field] || field.replace(/^.*\./, "").replace(/_/g, " ");
    const detail = data && (data.errors && data.errors.length ? data.errors.map((e) => `${e.field ? label(e.field) + ": " : ""}${e.message}`).join("; ") : data.detail);
    if (response.status === 401 && state.token) signOut(detail || "the token was refused");
    const error = new Error(detail || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

// A click that opens the link here; a middle or Ctrl/Cmd/Shift click is
// left to the browser (a new tab or window, which opens the same view).
function plainClick(ev) {
  return ev.button === 0 && !ev.ctrlKey && !ev.metaKey && !ev.shiftKey && !ev.altKey;
}

function needSignIn() {
  if (state.token) return false;
  notify("Sign in first: open the sign-in link the shop gave you (it ends in #token=…).", true);
  return true;
}

// Records the shown view's address as a new history entry, unless the
// address bar already has it (the view was opened from it).
function go(fragment) {
  const same = (a, b) => new URLSearchParams(a).toString() === new URLSearchParams(b).toString();
  if (same(location.hash.slice(1), fragment)) return;
  history.pushState(null, "", fragment ? `#${fragment}` : location.pathname + location.search);
}

// Opens the view the address bar names: on load, Back and Forward.
function route() {
  // A sign-in link pasted into a tab that shows the shop changes only the
  // fragment: take its token before anything else.
  if (/(?:^|[#&])token=/.test(location.hash)) {
    readToken();
    refreshBasketCount();
  }
  const at = new URLSearchParams(location.hash.slice(1));
  if (at.get("product")) return openProduct(at.get("product"));
  if (at.get("order")) return openOrder(at.get("order"));
  if (at.has("basket")) return openBasket();
  if (at.has("orders")) return openOrders(false);
  state.q = at.get("q") || "";
  state.category = at.get("category") || "";
  const offset = Number(at.get("offset"));
  state.offset = Number.isInteger(offset) && offset > 0 ? offset : 0;
  $("q").value = state.q;
  addCategory(state.category);
  $("category").value = state.category;
  return search();
}

// The address of the current search ("" for the first page of everything).
function searchAddress() {
  const at = new URLSearchParams();
  if (state.q) at.set("q", state.q);
  if (state.category) at.set("category", state.category);
  if (state.offset) at.set("offset", String(state.offset));
  return at.toString();
}

const TITLES = { results: "Products", detail: "Product", basket: "Your basket", order: "Order", orders: "Your orders" };

function show(section) {
  const changed = $(section).hidden;
  for (const id of Object.keys(TITLES)) $(id).hidden = id !== section;
  if (section !== "order") stopFollowing();
  document.title = `${TITLES[section]} · Bazaar`;
  // A new view takes the keyboard focus to its heading, so that a screen
  // reader says where the customer is and Tab goes on from there.
  if (changed) {
    const heading = $(section).querySelector("h2");
    if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
  }
  // A notice belongs to the view it was given in ("Order placed. Its status
  // updates live below." must not stay above the order history).
  notify("");
}

// A view named by the address bar (typed, pasted, Back) that cannot be
// opened: the view shown before is not what the address names, so it goes,
// and only the reason stays. A click that failed keeps its view (the
// address still names that one).
function failedToOpen(key, id, message) {
  if (new URLSearchParams(location.hash.slice(1)).get(key) === id) {
    for (const section of Object.keys(TITLES)) $(section).hidden = true;
    stopFollowing();
    document.title = "Bazaar";
  }
  notify(message, true);
}

// --- search -----------------------------------------------------------------

async function search() {
  const params = new URLSearchParams({ limit: String(state.limit), offset: String(state.offset) });
  if (state.q) params.set("q", state.q);
  if (state.category) params.set("category", state.category);
  // Only the newest search may render: the first page load's search can
  // answer after the one the customer typed.
  const mine = ++state.searches;
  $("prev").disabled = true;
  $("next").disabled = true;
  try {
    const page = await api("GET", `/api/v1/products?${params}`);
    if (mine !== state.searches) return;
    renderResults(page);
    go(searchAddress());
  } catch (e) {
    if (mine !== state.searches) return;
    notify(`Search failed: ${e.message}`, true);
    // What an earlier search found is not this one's answer.
    $("result-list").replaceChildren();
    $("results-meta").textContent = "";
    // The pager was off while loading; the customer may try again.
    $("prev").disabled = state.offset === 0;
    $("next").disabled = false;
  }
}

function renderResults(page) {
  show("results");
  const list = $("result-list");
  list.replaceChildren();
  for (const p of page.items) {
    const li = document.createElement("li");
    const h = document.createElement("h3");
    const a = document.createElement("a");
    a.href = `#product=${p.id}`;
    a.textContent = p.name;
    a.addEventListener("click", (ev) => { if (plainClick(ev)) { ev.preventDefault(); openProduct(p.id); } });
    h.append(a);
    const price = document.createElement("span");
    price.className = "price";
    price.textContent = money(p.price);
    const avail = document.createElement("span");
    avail.className = p.available > 0 ? "meta" : "meta out";
    avail.textContent = p.available > 0 ? `${p.available} available` : "Out of stock";
    const cat = document.createElement("span");
    cat.className = "meta";
    cat.textContent = p.category;
    const add = document.createElement("button");
    add.type = "button";
    add.textContent = "Add to basket";
    add.setAttribute("aria-label", `Add ${p.name} to basket`);
    add.disabled = !(p.available > 0);
    add.addEventListener("click", () => addToBasket(p.id, 1, p.available));
    li.append(h, cat, price, avail, add);
    list.append(li);
    addCategory(p.category);
  }
  if (page.partial && page.items.length === 0) {
    $("results-meta").textContent = "Search is not answering just now; please try again in a moment.";
  } else if (page.items.length === 0) {
    $("results-meta").textContent = page.total > 0 ? "No more results on this page." : "Nothing found. Try other words or all categories.";
  } else {
    const partial = page.partial ? " (some results may be missing just now)" : "";
    $("results-meta").textContent = `${page.total} found${partial}`;
  }
  $("prev").disabled = state.offset === 0;
  $("next").disabled = state.offset + state.limit >= page.total;
}

// Every category on sale, for the menu (a failure leaves the menu to fill
// from the results shown, as before).
async function loadCategories() {
  try {
    const list = await api("GET", "/api/v1/categories");
    for (const c of list.items) addCategory(c.name);
  } catch (_) { /* the menu still gains the categories of results */ }
}

function addCategory(category) {
  const select = $("category");
  if (!category || [...select.options].some((o) => o.value === category)) return;
  const option = document.createElement("option");
  option.value = category;
  option.textContent = category;
  select.append(option);
}

async function openProduct(id) {
  try {
    const p = await api("GET", `/api/v1/products/${encodeURIComponent(id)}`);
    state.product = p;
    $("detail-title").textContent = p.name;
    $("detail-category").textContent = `${p.category} · SKU ${p.sku}`;
    $("detail-description").textContent = p.description;
    $("detail-price").textContent = money(p.price);
    $("detail-available").textContent = p.available > 0 ? `${p.available} available` : "Out of stock";
    $("add-button").disabled = !(p.available > 0);
    show("detail");
    go(`product=${encodeURIComponent(id)}`);
  } catch (e) {
    failedToOpen("product", id, `Could not load the product: ${e.message}`);
  }
}

// --- basket -----------------------------------------------------------------

// Basket changes run one after another: an addition reads the line and
// sets its new quantity, so two quick clicks must not both read the old one.
function basketChange(change) {
  const done = state.basketQueue.then(change, change);
  state.basketQueue = done.catch(() => {});
  return done;
}

async function addToBasket(productId, quantity, available) {
  if (needSignIn()) return;
  await basketChange(async () => {
    try {
      const current = await api("GET", "/api/v1/basket");
      const line = current.items.find((l) => l.product_id === productId);
      const wanted = (line ? line.quantity : 0) + quantity;
      const basket = await api("PUT", `/api/v1/basket/items/${productId}`, { quantity: wanted });
      renderBasketCount(basket);
      if (Number.isInteger(available) && wanted > available) {
        notify(`Added. Your basket has ${wanted}, but only ${available} are available: the order would be rejected.`, true);
      } else {
        notify("Added to your basket.");
      }
    } catch (e) {
      // It may have gone through all the same: show what the basket holds.
      refreshBasketCount();
      notify(`Could not add it: ${e.message}. Check your basket before trying again.`, true);
    }
  });
}

async function setQuantity(productId, quantity) {
  await basketChange(async () => {
    try {
      renderBasket(await api("PUT", `/api/v1/basket/items/${productId}`, { quantity }));
      notify("");
    } catch (e) {
      notify(`Could not change the quantity: ${e.message}`, true);
    }
  });
}

function refreshBasketCount() {
  if (state.token) api("GET", "/api/v1/basket").then(renderBasketCount).catch(() => {});
}

function renderBasketCount(basket) {
  $("basket-count").textContent = String(basket.items.reduce((n, l) => n + l.quantity, 0));
}

async function openBasket() {
  if (needSignIn()) return;
  try {
    const basket = await api("GET", "/api/v1/basket");
    renderBasket(basket);
    show("basket");
    go("basket");
  } catch (e) {
    notify(`Could not load your basket: ${e.message}`, true);
  }
}

function renderBasket(basket) {
  renderBasketCount(basket);
  const body = $("basket-lines");
  body.replaceChildren();
  for (const l of basket.items) {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = l.name;
    // The unit price under the name, not in a column of its own, so the
    // table fits a phone's width.
    const unit = document.createElement("span");
    unit.className = "meta each";
    unit.textContent = `${money(l.unit_price)} each`;
    name.append(unit);
    // Fewer on sale than wanted: an order of the basket would be rejected.
    if (l.available < l.quantity) {
      const short = document.createElement("span");
      short.className = "meta short";
      short.textContent = l.available > 0 ? `only ${l.available} available` : "sold out";
      name.append(short);
    }
    const qty = document.createElement("td");
    const input = document.createElement("input");
    input.type = "number";
    input.min = "0";
    input.max = "100";
    input.value = String(l.quantity);
    input.className = "qty";
    input.setAttribute("aria-label", `Quantity of ${l.name}`);
    input.addEventListener("change", () => {
      const wanted = Number(input.value);
      if (input.value.trim() !== "" && Number.isInteger(wanted) && wanted >= 0 && wanted <= 100) setQuantity(l.product_id, wanted);
      else { notify("A quantity is a whole number from 0 to 100.", true); input.value = String(l.quantity); }
    });
    qty.append(input);
    const total = document.createElement("td");
    total.textContent = money(l.line_total);
    const remove = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = "Remove";
    button.setAttribute("aria-label", `Remove ${l.name}`);
    button.addEventListener("click", async () => {
      await basketChange(async () => {
        try { renderBasket(await api("DELETE", `/api/v1/basket/items/${l.product_id}`)); } catch (e) { notify(e.message, true); }
      });
    });
    remove.append(button);
    tr.append(name, qty, total, remove);
    body.append(tr);
  }
  $("basket-total").textContent = money(basket.total);
  // An order still unanswered may have emptied the basket: the customer
  // must still be able to ask about it.
  const empty = basket.items.length === 0 && !state.unanswered;
  state.basketLines = basketLines(basket.items);
  state.basketShown = basketPriced(basket.items);
  $("place-order").disabled = empty || state.placing;
  $("basket-empty").hidden = basket.items.length > 0;
  $("checkout-form").hidden = empty;
}

const UNANSWERED_KEY = "bazaar-unanswered-order";

// The order whose answer is owed ({customer, key, body}), or null. It is
// kept for the tab (sessionStorage), so a reload still asks about that
// order instead of placing another. While it is owed the form shows what
// was sent and cannot be changed: pressing again asks about that order.
function setUnanswered(unanswered) {
  state.unanswered = unanswered;
  if (unanswered) sessionStorage.setItem(UNANSWERED_KEY, JSON.stringify(unanswered));
  else sessionStorage.removeItem(UNANSWERED_KEY);
  const form = $("checkout-form");
  if (unanswered) {
    const a = unanswered.body.shipping_address || {};
    for (const [name, value] of [...Object.entries(a), ["payment_method", unanswered.body.payment_method]]) {
      if (form.elements[name] && value != null) form.elements[name].value = value;
    }
  }
  for (const field of form.elements) {
    if (field.id !== "place-order") field.disabled = !!unanswered;
  }
  $("place-order").textContent = unanswered ? "Ask again about this order" : "Place order";
}

// An order asked for in this tab before a reload, still unanswered.
function restoreUnanswered() {
  try {
    const kept = JSON.parse(sessionStorage.getItem(UNANSWERED_KEY) || "null");
    if (!kept) return;
    // Signed out (a token refused meanwhile): kept until someone signs in.
    if (!state.customer) return;
    if (kept.customer === state.customer && kept.key && kept.body) setUnanswered(kept);
    else setUnanswered(null);
  } catch (_) { setUnanswered(null); }
}

// Answers that say the shop refused the request itself: nothing was placed.
// Others (401, 403, 408, 429: refused before it was looked at) say nothing
// about an order asked for earlier.
const REFUSED = [400, 404, 409, 413, 415, 422];

// What the basket holds, as "product:quantity" pairs in a fixed order.
function basketLines(items) {
  return items.map((l) => `${l.product_id}:${l.quantity}`).sort().join(",");
}

// What the basket view shows: each line's product, quantity and unit price.
function basketPriced(items) {
  return items.map((l) => `${l.product_id}:${l.quantity}:${l.unit_price.amount_minor}${l.unit_price.currency}`).sort().join(",");
}

// Whether the shop's basket is still the one on screen. Another tab may
// have changed it, or an admin a price: then the view shows the basket as
// it is now and nothing is ordered until the customer presses again.
async function basketStillShown(token) {
  let basket;
  try {
    basket = await api("GET", "/api/v1/basket", undefined, undefined, token);
  } catch (e) {
    notify(`Nothing was ordered: the shop did not say what your basket holds (${e.message}). Press Place order again.`, true);
    return false;
  }
  if (basketPriced(basket.items) === state.basketShown) return true;
  renderBasket(basket);
  notify(basket.items.length === 0
    ? "Nothing was ordered: your basket is empty now (it was changed elsewhere, or ordered from another tab)."
    : "Nothing was ordered yet: your basket changed since this page showed it (in another tab, or a price changed). Check it below and press Place order again.", true);
  return false;
}

async function placeOrder(form) {
  if (needSignIn() || state.placing) return;
  // An order whose answer never came is asked about by sending exactly the
  // same request again (same Idempotency-Key, same body): the shop answers
  // with the order it placed, if it did, and never places a second one.
  // Only after an answer is a new order (a new key) possible.
  const earlier = state.unanswered;
  let body = earlier && earlier.body;
  if (!body) {
    const f = new FormData(form);
    body = {
      shipping_address: { name: f.get("name"), line1: f.get("line1"), city: f.get("city"), postal_code: f.get("postal_code"), country: f.get("country") },
      payment_method: f.get("payment_method"),
    };
  }
  const key = earlier ? earlier.key : newKey();
  // The basket this order takes (the basket view shows it).
  const lines = earlier ? earlier.lines : state.basketLines;
  state.placing = true;
  $("place-order").disabled = true;
  // For the customer who pressed, whatever another tab signs in meanwhile.
  const token = state.token;
  try {
    // A quantity change still on its way is part of the basket to check.
    await state.basketQueue.catch(() => {});
    if (!earlier && !(await basketStillShown(token))) return;
    const order = await api("POST", "/api/v1/orders", body, { "Idempotency-Key": key }, token);
    setUnanswered(null);
    followOrder(order.id, order);
    if (!earlier) {
      renderBasketCount({ items: [] });
      notify("Order placed. Its status updates live below.");
    } else {
      // The basket may have changed since that order took it: ask the shop.
      const basket = await api("GET", "/api/v1/basket").catch(() => null);
      const left = basket ? basket.items.reduce((n, l) => n + l.quantity, 0) : 0;
      if (basket) renderBasketCount(basket);
      // The first request never reached the shop: this one ordered the
      // basket as it was when pressed again.
      const changed = lines !== undefined && basketLines(order.lines) !== lines;
      notify((changed
        ? "Your order was placed, with your basket as it was when you asked again (it had changed since you first pressed Place order), as shown below."
        : "Your order was placed: the one you asked for when the shop did not answer, as shown below.")
        + (left > 0 ? ` Your basket still holds ${left} item(s), not ordered.` : ""));
    }
  } catch (e) {
    if (REFUSED.includes(e.status)) {
      setUnanswered(null);
      notify(`The order was not placed: ${e.message}`, true);
    } else if (earlier || e.status === undefined || e.status >= 500) {
      setUnanswered({ customer: earlier ? earlier.customer : state.customer, key, body, lines });
      // If the order was placed, the basket is empty now: the badge follows
      // the shop, not the last basket this page saw.
      refreshBasketCount();
      notify(`The shop did not answer about your order (${e.message}). It may have been placed: press “Ask again about this order” to find out (it will not be placed twice), or look in Orders.`, true);
    } else {
      // Refused before it was looked at (rate limit, sign-in): nothing placed.
      notify(`The order was not placed: ${e.message}`, true);
    }
  } finally {
    state.placing = false;
    $("place-order").disabled = false;
  }
}

// --- orders -----------------------------------------------------------------

// What a timeline step means to a customer; other types show as named.
const STEPS = {
  "checkout.order.placed": "Order placed",
  "checkout.order.confirmed": "Order confirmed",
  "checkout.order.rejected": "Order rejected",
  "checkout.order.cancelled": "Order cancelled",
  "checkout.order.cancellation-requested": "Cancellation requested",
  "warehouse.stock.reserved": "Stock reserved",
  "warehouse.stock.reservation-failed": "Not enough stock",
  "warehouse.stock.released": "Stock released",
  "warehouse.shipment.dispatched": "Shipped",
  "finance.payment.authorized": "Payment authorised",
  "finance.payment.failed": "Payment failed",
  "finance.payment.captured": "Payment taken",
  "finance.payment.voided": "Payment released",
  "finance.payment.refunded": "Payment refunded",
  "finance.invoice.issued": "Invoice issued",
};

// Why an order did not go through, as a customer reads it; a reason not
// listed here shows as written, underscores as spaces.
const REASONS = {
  out_of_stock: "not enough stock",
  unknown_product: "a product is no longer sold",
  payment_declined: "the card was declined",
  payment_invalid_token: "the card was not accepted",
  timeout: "the shop could not confirm it in time",
  cancelled_by_customer: "cancelled by you",
};

function reasonText(reason) {
  return REASONS[reason] || reason.replace(/_/g, " ");
}

// What became of the money of an order that did not go through: a
// rejected or cancelled order was not charged, or was refunded ("" for
// one that goes on). Finance prices an order as it is placed, so a
// rejected one may still show its VAT and total.
function chargeNote(o) {
  if ((o.timeline || []).some((t) => t.type.includes("payment.refunded"))) return "refunded";
  return ["rejected", "cancelled"].includes(o.status) ? "not charged" : "";
}

function renderOrder(o) {
  // The whole id: UUIDv7s made within a minute share their first digits.
  $("order-title").textContent = `Order ${o.id}`;
  $("order-status").textContent = o.status;
  $("order-reason").textContent = o.reason ? `(${reasonText(o.reason)})` : "";
  const note = chargeNote(o);
  $("order-totals").textContent = `Net ${money(o.net)} · VAT ${money(o.tax)} · Total ${money(o.total)}${note ? ` (${note})` : ""}`;
  $("order-lines").replaceChildren(...o.lines.map((l) => {
    const li = document.createElement("li");
    li.textContent = `${l.quantity} × ${l.name} — ${money(l.line_total)}`;
    return li;
  }));
  const tl = $("order-timeline");
  tl.replaceChildren();
  for (const step of o.timeline) {
    const li = document.createElement("li");
    const type = step.type.replace(/^bazaar\./, "").replace(/\.v\d+$/, "");
    li.textContent = `${new Date(step.at).toLocaleTimeString()} — ${STEPS[type] || type}`;
    tl.append(li);
  }
  const cancel = $("order-cancel");
  cancel.hidden = !CANCELLABLE.includes(o.status);
  cancel.disabled = false;
  cancel.onclick = async () => {
    cancel.disabled = true;
    try {
      renderOrder(await api("POST", `/api/v1/orders/${o.id}/cancel`));
      notify("Cancellation accepted.");
    } catch (e) {
      notify(`The order was not cancelled: ${e.message}`, true);
      cancel.disabled = false;
    }
  };
  // A rejected order took the basket's lines: one press puts them back, so
  // the customer can change a quantity or the card and try again.
  const refill = $("order-refill");
  refill.hidden = o.status !== "rejected";
  refill.disabled = false;
  refill.onclick = async () => {
    refill.disabled = true;
    await basketChange(async () => {
      try {
        const current = await api("GET", "/api/v1/basket");
        for (const line of o.lines) {
          const had = current.items.find((l) => l.product_id === line.product_id);
          const quantity = Math.min(100, (had ? had.quantity : 0) + line.quantity);
          await api("PUT", `/api/v1/basket/items/${line.product_id}`, { quantity });
        }
      } catch (e) {
        notify(`Could not put them back: ${e.message}`, true);
        refill.disabled = false;
        throw e;
      }
    }).then(openBasket, () => {});
  };
  const invoiced = o.timeline.some((t) => t.type.includes("invoice.issued"));
  $("order-invoice").hidden = !invoiced;
  $("order-invoice").onclick = async (ev) => {
    ev.preventDefault();
    try {
      const inv = await api("GET", `/api/v1/orders/${o.id}/invoice`);
      const pre = $("invoice");
      pre.textContent = `Invoice ${inv.number}\n` + inv.lines.map((l) => `${l.quantity} × ${l.name}  ${money(l.line_total)}`).join("\n") +
        `\nNet ${money(inv.net)}  VAT ${money(inv.tax)}  Total ${money(inv.total)}` +
        (inv.refunded_at ? `\nRefunded on ${new Date(inv.refunded_at).toLocaleString()}: nothing of this invoice is owed.` : "");
      pre.hidden = false;
    } catch (e) { notify(e.message, true); }
  };
}

function stopFollowing() {
  if (state.orderStream) state.orderStream.close();
  state.orderStream = null;
}

function followOrder(id, first) {
  stopFollowing();
  $("invoice").hidden = true;
  show("order");
  go(`order=${encodeURIComponent(id)}`);
  if (first) renderOrder(first);
  const source = new EventSource(`/api/v1/orders/${id}/updates?access_token=${encodeURIComponent(state.token)}`);
  state.orderStream = source;
  source.addEventListener("order", (ev) => { if (state.orderStream === source) renderOrder(JSON.parse(ev.data)); });
  // A stream the shop refused (too many open, a token that expired) is not
  // tried again by the browser: say so, rather than stand still unnoticed.
  source.onerror = () => {
    if (source.readyState !== EventSource.CLOSED || state.orderStream !== source) return;
    state.orderStream = null;
    notify("Live updates of this order stopped; reload the page to see its latest status.", true);
  };
}

// An order opened from its address: read it, then follow it.
async function openOrder(id) {
  if (needSignIn()) return;
  try {
    followOrder(id, await api("GET", `/api/v1/orders/${encodeURIComponent(id)}`));
  } catch (e) {
    failedToOpen("order", id, `Could not load the order: ${e.message}`);
  }
}

async function openOrders(more) {
  if (needSignIn()) return;
  if (!more) { state.ordersCursor = null; $("order-list").replaceChildren(); }
  const params = new URLSearchParams({ limit: "10" });
  if (state.ordersCursor) params.set("cursor", state.ordersCursor);
  try {
    const page = await api("GET", `/api/v1/orders?${params}`);
    for (const o of page.items) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = `#order=${o.id}`;
      const note = chargeNote(o);
      const amount = note === "refunded" ? `${money(o.total || o.net)} refunded`
        : note || money(o.total || o.net);
      a.textContent = `${new Date(o.created_at).toLocaleString()} — ${o.status} — ${amount} — …${o.id.slice(-8)}`;
      a.addEventListener("click", (ev) => { if (plainClick(ev)) { ev.preventDefault(); followOrder(o.id, o); } });
      li.append(a);
      $("order-list").append(li);
    }
    state.ordersCursor = page.next_cursor;
    $("orders-more").hidden = !page.next_cursor;
    $("orders-empty").hidden = $("order-list").children.length > 0;
    show("orders");
    go("orders");
  } catch (e) {
    notify(`Could not load your orders: ${e.message}`, true);
  }
}

// --- wiring -----------------------------------------------------------------

$("search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.q = $("q").value.trim();
  state.category = $("category").value;
  state.offset = 0;
  notify("");
  search();
});
// Home without reloading the page: a reload would drop a filled checkout form.
document.querySelector(".brand").addEventListener("click", (ev) => {
  if (!plainClick(ev)) return;
  ev.preventDefault();
  state.q = "";
  state.category = "";
  state.offset = 0;
  $("q").value = "";
  $("category").value = "";
  notify("");
  search();
});
$("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); search(); });
$("next").addEventListener("click", () => { state.offset += state.limit; search(); });
$("detail-back").addEventListener("click", search);
$("add-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (state.product) addToBasket(state.product.id, Number($("add-qty").value) || 1, state.product.available);
});
$("basket-button").addEventListener("click", openBasket);
$("orders-button").addEventListener("click", () => openOrders(false));
$("orders-more").addEventListener("click", () => openOrders(true));
$("checkout-form").addEventListener("submit", (ev) => { ev.preventDefault(); placeOrder(ev.target); });

window.addEventListener("popstate", route);
// Signing in as someone else (or out) in another tab of the shop changes
// who this tab acts for: it says so and shows the new customer's views.
window.addEventListener("storage", (ev) => {
  if (ev.key !== TOKEN_KEY && ev.key !== null) return;
  const before = state.customer;
  readToken();
  if (state.customer === before) return;
  const said = state.customer
    ? `Signed in as ${state.customer} in another tab: this page now acts for ${state.customer}.`
    : "Signed out in another tab.";
  refreshBasketCount();
  // Said once the view is shown again (opening a view clears notices).
  Promise.resolve(route()).finally(() => notify(said));
});

readToken();
restoreUnanswered();
route();
refreshBasketCount();
loadCategories();

import type { DeviceType } from "../schemas/common";

export type MethodKind = "card" | "wallet" | "bnpl" | "bank_transfer" | "bank_debit" | "local";

export interface AmountBounds {
  /** Minor units of `currency`. */
  min?: number;
  max?: number;
}

export interface CatalogMethod {
  id: string;
  name: string;
  kind: MethodKind;
  /** ISO 3166-1 alpha-2 codes of the shopper's country, or "*" for everywhere. */
  countries: readonly string[] | "*";
  /** ISO 4217 codes, or "*" for any currency. */
  currencies: readonly string[] | "*";
  devices: readonly DeviceType[];
  /** Basket bounds per currency (BNPL providers cap the basket). */
  amount?: Readonly<Record<string, AmountBounds>>;
}

const ALL_DEVICES: readonly DeviceType[] = ["mobile", "desktop", "tablet"];
const EEA = ["AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO"] as const;
const SEPA = [...EEA, "CH", "GB", "MC", "SM", "VA", "AD"] as const;

/**
 * The built-in catalog: real methods and where they really work. A merchant enables a subset;
 * the availability rules here are hard filters on every answer. Append only: decision ids name
 * methods by their index here (personalization/decisionPayload.ts), for 90 days after issue.
 */
export const CATALOG: readonly CatalogMethod[] = [
  { id: "visa", name: "Visa", kind: "card", countries: "*", currencies: "*", devices: ALL_DEVICES },
  { id: "mastercard", name: "Mastercard", kind: "card", countries: "*", currencies: "*", devices: ALL_DEVICES },
  { id: "amex", name: "American Express", kind: "card", countries: "*", currencies: "*", devices: ALL_DEVICES },
  { id: "discover", name: "Discover", kind: "card", countries: ["US", "CA", "MX", "PR"], currencies: ["USD", "CAD", "MXN"], devices: ALL_DEVICES },
  { id: "jcb", name: "JCB", kind: "card", countries: "*", currencies: "*", devices: ALL_DEVICES },
  { id: "unionpay", name: "UnionPay", kind: "card", countries: "*", currencies: "*", devices: ALL_DEVICES },
  { id: "cartes_bancaires", name: "Cartes Bancaires", kind: "card", countries: ["FR"], currencies: ["EUR"], devices: ALL_DEVICES },
  // Apple Pay needs Safari on Apple hardware, which the device class alone cannot tell; whether the
  // wallet can be offered on this browser stays the checkout page's call (ApplePaySession).
  { id: "apple_pay", name: "Apple Pay", kind: "wallet", countries: "*", currencies: "*", devices: ALL_DEVICES },
  { id: "google_pay", name: "Google Pay", kind: "wallet", countries: "*", currencies: "*", devices: ALL_DEVICES },
  { id: "paypal", name: "PayPal", kind: "wallet", countries: "*", currencies: "*", devices: ALL_DEVICES },
  {
    id: "klarna", name: "Klarna", kind: "bnpl",
    countries: ["US", "GB", "DE", "AT", "NL", "BE", "SE", "NO", "FI", "DK", "FR", "IT", "ES", "IE", "PL", "PT", "CH", "AU", "NZ", "CA"],
    currencies: ["USD", "GBP", "EUR", "SEK", "NOK", "DKK", "PLN", "CHF", "AUD", "NZD", "CAD"],
    devices: ALL_DEVICES,
    amount: { USD: { min: 3500, max: 1000000 }, EUR: { min: 3500, max: 1000000 }, GBP: { min: 3500, max: 1000000 } },
  },
  {
    id: "afterpay", name: "Afterpay / Clearpay", kind: "bnpl", countries: ["US", "CA", "AU", "NZ", "GB"],
    currencies: ["USD", "CAD", "AUD", "NZD", "GBP"], devices: ALL_DEVICES,
    amount: { USD: { min: 100, max: 400000 }, CAD: { min: 100, max: 200000 }, AUD: { min: 100, max: 200000 }, NZD: { min: 100, max: 200000 }, GBP: { min: 100, max: 100000 } },
  },
  {
    id: "affirm", name: "Affirm", kind: "bnpl", countries: ["US", "CA"], currencies: ["USD", "CAD"], devices: ALL_DEVICES,
    amount: { USD: { min: 5000, max: 3000000 }, CAD: { min: 5000, max: 3000000 } },
  },
  { id: "ideal", name: "iDEAL", kind: "bank_transfer", countries: ["NL"], currencies: ["EUR"], devices: ALL_DEVICES },
  { id: "sepa_debit", name: "SEPA Direct Debit", kind: "bank_debit", countries: SEPA, currencies: ["EUR"], devices: ALL_DEVICES },
  { id: "bancontact", name: "Bancontact", kind: "bank_transfer", countries: ["BE"], currencies: ["EUR"], devices: ALL_DEVICES },
  { id: "sofort", name: "Sofort", kind: "bank_transfer", countries: ["DE", "AT", "BE", "NL", "ES", "IT"], currencies: ["EUR"], devices: ALL_DEVICES },
  { id: "giropay", name: "giropay", kind: "bank_transfer", countries: ["DE"], currencies: ["EUR"], devices: ALL_DEVICES },
  { id: "eps", name: "EPS", kind: "bank_transfer", countries: ["AT"], currencies: ["EUR"], devices: ALL_DEVICES },
  { id: "przelewy24", name: "Przelewy24", kind: "bank_transfer", countries: ["PL"], currencies: ["PLN", "EUR"], devices: ALL_DEVICES },
  { id: "blik", name: "BLIK", kind: "local", countries: ["PL"], currencies: ["PLN"], devices: ALL_DEVICES },
  { id: "swish", name: "Swish", kind: "local", countries: ["SE"], currencies: ["SEK"], devices: ALL_DEVICES },
  { id: "mobilepay", name: "MobilePay", kind: "wallet", countries: ["DK", "FI"], currencies: ["DKK", "EUR"], devices: ALL_DEVICES },
  { id: "twint", name: "TWINT", kind: "wallet", countries: ["CH"], currencies: ["CHF"], devices: ALL_DEVICES },
  { id: "pix", name: "Pix", kind: "local", countries: ["BR"], currencies: ["BRL"], devices: ALL_DEVICES },
  { id: "boleto", name: "Boleto Bancário", kind: "local", countries: ["BR"], currencies: ["BRL"], devices: ALL_DEVICES, amount: { BRL: { min: 500, max: 4999999 } } },
  { id: "oxxo", name: "OXXO", kind: "local", countries: ["MX"], currencies: ["MXN"], devices: ALL_DEVICES, amount: { MXN: { min: 1000, max: 1000000 } } },
  { id: "upi", name: "UPI", kind: "local", countries: ["IN"], currencies: ["INR"], devices: ALL_DEVICES, amount: { INR: { max: 10000000 } } },
  { id: "alipay", name: "Alipay", kind: "wallet", countries: "*", currencies: ["CNY", "USD", "EUR", "GBP", "HKD", "SGD", "AUD", "JPY"], devices: ALL_DEVICES },
  { id: "wechat_pay", name: "WeChat Pay", kind: "wallet", countries: "*", currencies: ["CNY", "USD", "EUR", "GBP", "HKD", "SGD", "AUD", "JPY"], devices: ALL_DEVICES },
  { id: "grabpay", name: "GrabPay", kind: "wallet", countries: ["SG", "MY", "PH"], currencies: ["SGD", "MYR", "PHP"], devices: ALL_DEVICES },
  { id: "konbini", name: "Konbini", kind: "local", countries: ["JP"], currencies: ["JPY"], devices: ALL_DEVICES, amount: { JPY: { min: 120, max: 300000 } } },
  { id: "cash_app_pay", name: "Cash App Pay", kind: "wallet", countries: ["US"], currencies: ["USD"], devices: ALL_DEVICES },
];

export const CATALOG_BY_ID: ReadonlyMap<string, CatalogMethod> = new Map(CATALOG.map((m) => [m.id, m]));

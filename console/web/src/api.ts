// Calls to the console server. It acts with the signed-in person's token; the CSRF token
// from sign-in goes with every change.
export interface Me {
  user: string;
  groups?: string[];
  csrf: string;
  expires: string;
}

export interface Money {
  amount: string;
  currency: string;
}

export interface Counters {
  launched?: number;
  targeted?: number;
  leads?: number;
  rewardsCancelled?: number;
  sent?: number;
  delivered?: number;
  failed?: number;
  converted?: number;
  rewardsGranted?: number;
  bonusesActivated?: number;
  couponsRedeemed?: number;
  suppressed?: Record<string, number>;
}

export interface VariantStatus {
  name: string;
  players?: number;
  converted?: number;
  conversionRate?: string;
  pValue?: string;
  significant?: boolean;
  cpa?: string;
}

export interface ChannelReport {
  channel: string;
  sent?: number;
  delivered?: number;
  failed?: number;
  undelivered?: number;
  opened?: number;
  clicked?: number;
  bounced?: number;
  complaints?: number;
  unsubscribes?: number;
  converted?: number;
  messageCost?: string;
  revenue?: string;
  cpa?: string;
  leads?: number;
  cpl?: string;
  roi?: string;
}

export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

export interface CampaignStatus {
  phase?: string;
  counters?: Counters;
  spend?: { spent?: Money; remaining?: Money };
  variants?: VariantStatus[];
  channels?: ChannelReport[];
  report?: { currency?: string; revenue?: string; cpa?: string; rewardCost?: string; messageCost?: string; conversions?: number; leads?: number; cpl?: string; roi?: string };
  conditions?: Condition[];
  observedGeneration?: number;
}

export interface Row {
  name: string;
  tournament?: boolean;
  generation: number;
  category?: string;
  paused?: boolean;
  budget?: { total?: Money; perPeriod?: { period: string; amount: Money }; perPlayer?: Money };
  status: CampaignStatus;
  ready?: string;
  reason?: string;
  message?: string;
  steps: number;
}

export type Access = Record<string, string[]>;

export function can(a: Access | null, group: string, resource: string, verb: string): boolean {
  if (!a) return false;
  for (const k of [`${group}/${resource}`, `${group}/*`, `*/${resource}`, "*/*"]) {
    const v = a[k];
    if (v && (v.includes(verb) || v.includes("*"))) return true;
  }
  return false;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
    public body?: unknown,
  ) {
    super(message);
  }
}

let csrf = "";
export function setCSRF(token: string) {
  csrf = token;
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrf;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const msg = (data as { error?: string } | undefined)?.error ?? `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, msg, data);
  }
  return data as T;
}

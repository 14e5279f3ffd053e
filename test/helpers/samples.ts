/**
 * Every answer the shared fixtures (api(), admin()) got from the worker in this test file. After the
 * file, test/helpers/setup.ts checks each one against the OpenAPI document (test/helpers/contract.ts).
 */
export interface Sample {
  method: string;
  /** Path and query, as requested. */
  path: string;
  status: number;
  headers: Headers;
  body: Promise<string>;
}

export const samples: Sample[] = [];

/** Records a copy of the answer and hands the original back untouched. */
export function recordSample(method: string, path: string, res: Response): Response {
  const body = res.body ? res.clone().text() : Promise.resolve("");
  body.catch(() => undefined); // a body the test aborted is reported by the check, not as an unhandled rejection
  samples.push({ method: method.toUpperCase(), path, status: res.status, headers: new Headers(res.headers), body });
  return res;
}

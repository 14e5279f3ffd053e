// The tests read their target from the environment; the client itself never touches `process`.
declare const process: { env: Record<string, string | undefined> };

// The part of Node's `node:net` the raw-socket tests use (the client has no Node types to depend on).
declare module "node:net" {
  interface Socket {
    write(data: string): boolean;
    end(data?: string): void;
    destroy(): void;
    readonly destroyed: boolean;
    once(event: "data", listener: (chunk: unknown) => void): this;
    on(event: "error" | "close", listener: () => void): this;
  }
  interface Server {
    listen(port: number, host: string, callback: () => void): this;
    address(): { port: number } | string | null;
    close(): this;
  }
  function createServer(handler: (socket: Socket) => void): Server;
}

// What the garbage-collection test uses to get gc() without --expose-gc on the command line.
declare module "node:v8" {
  function setFlagsFromString(flags: string): void;
}
declare module "node:vm" {
  function runInNewContext(code: string): unknown;
}

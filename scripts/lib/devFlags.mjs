// The `wrangler dev` flags `npm run dev` reads itself: the local state (--persist-to) and config
// (-c) its migrations and seed must use, and the address it prints and sends cron triggers to.

export const DEFAULT_PORT = 8787;

/** `--name value` or `--name=value` for the first of `names` in `args`: its value and its tokens, or null. */
function flag(args, names) {
  const i = args.findIndex((a) => names.some((n) => a === n || a.startsWith(`${n}=`)));
  if (i === -1) return null;
  return args[i].includes("=") ? { value: args[i].slice(args[i].indexOf("=") + 1), tokens: [args[i]] } : { value: args[i + 1], tokens: [args[i], args[i + 1]] };
}

/**
 * The flags of `npm run dev -- <args>`. The port always reaches wrangler explicitly: without --port
 * wrangler moves to the next free port when 8787 is taken, away from the banner and cron ticker;
 * with it, it fails instead.
 */
export function devFlags(args) {
  const port = flag(args, ["--port"]);
  const portNumber = Number(port?.value ?? DEFAULT_PORT);
  if (!Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65535) throw new Error(`--port must be a TCP port (1–65535), not ${JSON.stringify(port?.value)}`);
  return {
    port: portNumber,
    host: flag(args, ["--ip"])?.value ?? "localhost",
    persistArgs: flag(args, ["--persist-to"])?.tokens ?? [],
    configArgs: flag(args, ["-c", "--config"])?.tokens ?? [],
    configPath: flag(args, ["-c", "--config"])?.value ?? "wrangler.toml",
    wranglerArgs: port ? args : [...args, "--port", String(portNumber)],
  };
}

// Verifies webhook deliveries with the Standard Webhooks reference implementation. Reads JSON from
// stdin, {"secret": "whsec_...", "deliveries": [{"id", "timestamp", "signature", "body",
// "received_at_ms"}]}, and prints {"verified": N, "failures": ["..."]}. Each delivery is verified as
// of the moment the receiver took it, by the receiver's clock (the tests move the sender's clock and
// the receiver's together), so the library's check of the timestamp applies as it would live.
import { readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";

const input = JSON.parse(readFileSync(0, "utf8"));
const webhook = new Webhook(input.secret);
let verified = 0;
const failures = [];
const realNow = Date.now;
for (const d of input.deliveries) {
  Date.now = () => d.received_at_ms ?? realNow();
  try {
    webhook.verify(d.body, { "webhook-id": d.id, "webhook-timestamp": d.timestamp, "webhook-signature": d.signature });
    verified += 1;
  } catch (error) {
    failures.push(`${d.id}: ${error}`);
  }
}
console.log(JSON.stringify({ verified, failures }));

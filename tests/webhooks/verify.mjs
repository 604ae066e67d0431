// Verifies webhook deliveries with the Standard Webhooks reference implementation. Reads JSON from
// stdin, {"secret": "whsec_...", "deliveries": [{"id", "timestamp", "signature", "body"}]}, and
// prints {"verified": N, "failures": ["..."]}.
import { readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";

const input = JSON.parse(readFileSync(0, "utf8"));
const webhook = new Webhook(input.secret);
let verified = 0;
const failures = [];
for (const d of input.deliveries) {
  try {
    webhook.verify(d.body, { "webhook-id": d.id, "webhook-timestamp": d.timestamp, "webhook-signature": d.signature });
    verified += 1;
  } catch (error) {
    failures.push(`${d.id}: ${error}`);
  }
}
console.log(JSON.stringify({ verified, failures }));

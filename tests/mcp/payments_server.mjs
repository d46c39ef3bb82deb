// A small payments MCP server (official SDK, stdio) for the approval tests (tests/mcp and the
// browser test in tests/ui): `get_order` reads an order (the before-state a refund changes),
// `refund_order` refunds part of it, `get_balance` reads an account's balance. What it reads
// carries PAYMENTS_MARKER from its environment, so a test can tell a before-state this server
// produced from one anybody else wrote.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const marker = process.env.PAYMENTS_MARKER ?? "unset";
const orders = new Map([
  ["O-1001", { order_id: "O-1001", status: "paid", amount_eur: 80, refunded_eur: 0 }],
  ["O-1002", { order_id: "O-1002", status: "paid", amount_eur: 45.5, refunded_eur: 10 }],
  ["O-1003", { order_id: "O-1003", status: "paid", amount_eur: 300, refunded_eur: 0 }],
]);

const accounts = new Map([
  ["ACC-0001", { account_id: "ACC-0001", balance_eur: 310.25, refunds_this_month: 1 }],
  ["ACC-0002", { account_id: "ACC-0002", balance_eur: 12, refunds_this_month: 4 }],
]);

const server = new McpServer({ name: "payments", version: "1.0.0" });
server.registerTool(
  "get_balance",
  { description: "Reads an account's balance and refunds this month.", inputSchema: { account_id: z.string() } },
  async ({ account_id }) => {
    const a = accounts.get(account_id);
    if (!a) return { content: [{ type: "text", text: `no account ${account_id}` }], isError: true };
    return { content: [{ type: "text", text: JSON.stringify({ ...a, source: marker }) }] };
  },
);
server.registerTool(
  "get_order",
  { description: "Reads an order: status, amount and what was refunded so far.", inputSchema: { order_id: z.string() } },
  async ({ order_id }) => {
    const o = orders.get(order_id);
    if (!o) return { content: [{ type: "text", text: `no order ${order_id}` }], isError: true };
    return { content: [{ type: "text", text: JSON.stringify({ ...o, source: marker }) }] };
  },
);
server.registerTool(
  "refund_order",
  { description: "Refunds part of an order.", inputSchema: { order_id: z.string(), amount: z.number() } },
  async ({ order_id, amount }) => {
    const o = orders.get(order_id);
    if (!o) return { content: [{ type: "text", text: `no order ${order_id}` }], isError: true };
    o.refunded_eur += amount;
    return { content: [{ type: "text", text: `refunded ${amount} on ${order_id}; refunded so far ${o.refunded_eur}` }] };
  },
);
await server.connect(new StdioServerTransport());

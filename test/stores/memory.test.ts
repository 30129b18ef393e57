import { describeStore } from "./conformance.js";
import { MemoryStore } from "../../src/stores/memory/index.js";

describeStore("memory", { create: () => new MemoryStore() });

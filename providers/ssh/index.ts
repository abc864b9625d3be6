/** The SSH layer: connection, host key pin, command building and quoting, remote files. */
export * from "./client";
export * from "./command";
export * from "./connection";
export * from "./files";
export * from "./hostKey";
export * from "./quote";

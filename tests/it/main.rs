mod crash;
mod intake;
mod network;
mod platform;
mod security;
mod store;
mod workflows;

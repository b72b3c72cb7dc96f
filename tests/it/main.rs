mod store;
mod workflows;

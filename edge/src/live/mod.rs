pub mod core_view;
pub mod follower_task;
pub mod handler;
pub mod hub;
pub mod keys;
pub mod settings;
pub mod stream_state;

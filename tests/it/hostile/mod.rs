mod budget;
mod floods;
